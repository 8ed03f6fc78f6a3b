"""`/readyz` and `/metrics` on a spawned HTTP server, read by a Prometheus text-format parser."""

from __future__ import annotations

import httpx2
import pytest
from helpers import call, call_error, server_env, unique
from helpers.http import bearer, http_server, mcp_client
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_need_their_own_key_when_auth_is_on_and_count_calls(pg_url: str) -> None:
    key, metrics_key, schema = unique("key"), unique("metrics"), unique("met")
    env = server_env(pg_url, tenant_key_map=f"{key}:{schema}", metrics_key=metrics_key)
    with http_server(env) as server:
        async with httpx2.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{server.url}/readyz")).json() == {"status": "ready"}
            for refused in (None, key, "wrong"):
                answer = await http.get(f"{server.url}/metrics", headers=bearer(refused))
                assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
                assert "bulkhead_tool_calls" not in answer.text
            async with mcp_client(server.url, key) as client:
                await call(client, "retain", content="Metrics count this retain.", bank="notes")
                await call(client, "retain", content="And this one.", bank="notes")
                await call_error(client, "recall", query="x", bank="not a bank!")
                await call(client, "list_banks")
            scraped = await http.get(f"{server.url}/metrics", headers=bearer(metrics_key))
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    found = samples(scraped.text)
    assert found[("bulkhead_tool_calls_total", (("outcome", "ok"), ("tool", "retain")))] == 2
    assert found[("bulkhead_tool_calls_total", (("outcome", "rejected"), ("tool", "recall")))] == 1
    assert found[("bulkhead_tool_calls_total", (("outcome", "ok"), ("tool", "list_banks")))] == 1
    assert found[("bulkhead_tool_call_duration_seconds_count", (("tool", "retain"),))] == 2
    assert found[("bulkhead_pool_max_connections", ())] == 10
    assert found[("bulkhead_pool_connections", ())] >= 1
    assert ("bulkhead_pool_waiting", ()) in found and ("bulkhead_sessions_open", ()) in found
    assert found[("bulkhead_embedder_batch_texts_count", ())] >= 2
    assert ("bulkhead_embedder_queued_texts", ()) in found
    assert schema not in scraped.text and key not in scraped.text and "tenant" not in scraped.text


async def test_metrics_without_a_metrics_key_stay_closed_while_auth_is_on(pg_url: str) -> None:
    env = server_env(pg_url, tenant_key_map=f"{unique('key')}:{unique('met')}")
    with http_server(env) as server:
        answer = httpx2.get(f"{server.url}/metrics", timeout=30)
    assert answer.status_code == 401 and "BULKHEAD_METRICS_KEY is not set" in answer.text


async def test_metrics_open_on_loopback_without_auth_and_labelled_by_tenant_on_request(pg_url: str) -> None:
    schema = unique("lab")
    with http_server(server_env(pg_url, default_schema=schema, metrics_tenant_label="true")) as server:
        async with mcp_client(server.url, None) as client:
            await call(client, "list_banks")
        scraped = httpx2.get(f"{server.url}/metrics", timeout=30)
        log = server.log()
    assert scraped.status_code == 200
    found = samples(scraped.text)
    assert found[("bulkhead_tool_calls_total", (("outcome", "ok"), ("tenant", schema), ("tool", "list_banks")))] == 1
    assert "BULKHEAD_METRICS_TENANT_LABEL is on" in log
