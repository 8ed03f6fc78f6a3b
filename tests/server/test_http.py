"""The HTTP transports end to end: a spawned `bulkhead serve --transport http` on a loopback port,
driven by the MCP SDK's streamable HTTP (handshake and newest revision) and SSE clients."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import pytest
from helpers import call, server_env, unique
from helpers.http import (
    ACCEPT,
    HANDSHAKE_VERSION,
    INITIALIZE,
    MODES,
    HttpServer,
    bearer,
    http_server,
    mcp_client,
    open_session,
    rpc,
)

pytestmark = pytest.mark.anyio


@dataclass
class Keyed:
    """A server with auth on and four tenants: `keys[i]` maps to `schemas[i]`."""

    server: HttpServer
    keys: list[str]
    schemas: list[str]


@pytest.fixture(scope="module")
def keyed(pg_url: str) -> Iterator[Keyed]:
    keys = [unique("key") for _ in range(4)]
    schemas = [unique("tenant") for _ in range(4)]
    key_map = ";".join(f"{key}:{schema}" for key, schema in zip(keys, schemas, strict=True))
    with http_server(server_env(pg_url, tenant_key_map=key_map, log_level="INFO")) as server:
        yield Keyed(server, keys, schemas)
        assert server.stop() == 0, server.log()


def sse_result(body: str) -> dict[str, Any]:
    """The JSON-RPC message in a one-event SSE response body."""
    data = [line.removeprefix("data:").strip() for line in body.splitlines() if line.startswith("data:")]
    return json.loads(data[-1])


async def on_session(http: httpx2.AsyncClient, url: str, session_id: str, key: str | None) -> httpx2.Response:
    """A `list_banks` call on an existing session, as the holder of `key`."""
    headers = {**ACCEPT, **bearer(key), "mcp-session-id": session_id, "mcp-protocol-version": HANDSHAKE_VERSION}
    return await http.post(f"{url}/mcp", json=rpc("tools/call", {"name": "list_banks"}, id=7), headers=headers)


async def test_healthz_answers_without_a_key_and_names_no_tenant(keyed: Keyed) -> None:
    async with httpx2.AsyncClient() as http:
        reply = await http.get(f"{keyed.server.url}/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}
    assert not any(schema in reply.text for schema in keyed.schemas)


async def test_missing_malformed_and_unknown_keys_get_the_same_401(keyed: Keyed) -> None:
    url, key = keyed.server.url, keyed.keys[0]
    attempts: list[dict[str, str]] = [
        {},
        {"Authorization": f"Basic {key}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer  {key}"},
        {"Authorization": f"Bearer {key} {key}"},
        {"Authorization": key},
        {"Authorization": f"Bearer {key}x"},
        {"Authorization": f"Bearer {unique('key')}"},
        {"Authorization": f"Bearer {key[:-1]}"},
    ]
    replies = []
    async with httpx2.AsyncClient() as http:
        for headers in attempts:
            replies.append(await http.post(f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, **headers}))
            replies.append(await http.get(f"{url}/sse", headers=headers))
            replies.append(await http.post(f"{url}/messages/?session_id={uuid.uuid4().hex}", json={}, headers=headers))
    challenge = 'Bearer error="invalid_token", error_description="Authentication required"'
    for reply in replies:
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == challenge
        assert reply.content == replies[0].content
        assert key not in reply.text


@pytest.mark.parametrize("mode", MODES)
async def test_a_retains_and_b_never_sees_it_under_the_same_bank_name(keyed: Keyed, mode: str) -> None:
    url, key_a, key_b = keyed.server.url, keyed.keys[0], keyed.keys[1]
    bank = unique("shared")
    async with mcp_client(url, key_a, mode) as a, mcp_client(url, key_b, mode) as b:
        if mode == "auto":
            assert a.session.protocol_version == "2026-07-28"
        elif mode == "legacy":
            assert a.session.protocol_version == HANDSHAKE_VERSION
        await call(a, "retain", content="Tenant A's launch code is amber falcon.", bank=bank)
        missing = await call(b, "recall", query="launch code amber falcon", bank=bank)
        assert missing["memories"] == [] and "amber" not in str(missing)
        assert bank not in [row["bank"] for row in (await call(b, "list_banks"))["banks"]]
        await call(b, "retain", content="Tenant B's launch code is violet otter.", bank=bank)
        seen_by_b = await call(b, "recall", query="launch code", bank=bank)
        seen_by_a = await call(a, "recall", query="launch code", bank=bank)
        forgotten = await call(b, "forget", bank=bank, memory_ids=[m["id"] for m in seen_by_a["memories"]])
    assert [m["text"] for m in seen_by_b["memories"]] == ["Tenant B's launch code is violet otter."]
    assert [m["text"] for m in seen_by_a["memories"]] == ["Tenant A's launch code is amber falcon."]
    assert forgotten["deleted"] == 0


async def test_a_session_reused_with_another_key_is_refused_and_reveals_nothing(keyed: Keyed) -> None:
    url, key_a, key_b = keyed.server.url, keyed.keys[0], keyed.keys[1]
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await open_session(http, url, key_a)
        as_b = await on_session(http, url, session_id, key_b)
        unknown_to_b = await on_session(http, url, uuid.uuid4().hex, key_b)
        as_nobody = await on_session(http, url, session_id, None)
        as_a = await on_session(http, url, session_id, key_a)
    assert as_b.status_code == unknown_to_b.status_code == 404
    assert as_b.content == unknown_to_b.content
    assert "mcp-session-id" not in as_b.headers
    assert keyed.schemas[0] not in as_b.text
    assert as_nobody.status_code == 401
    # The session itself is untouched and still serves the key that opened it.
    assert as_a.status_code == 200
    assert sse_result(as_a.text)["result"]["isError"] is False


async def test_an_sse_session_reused_with_another_key_is_refused_and_reveals_nothing(keyed: Keyed) -> None:
    url, key_a, key_b = keyed.server.url, keyed.keys[0], keyed.keys[1]
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        http.stream("GET", f"{url}/sse", headers=bearer(key_a)) as stream,
    ):
        assert stream.status_code == 200
        # Hold on to the line iterator: a discarded one closes the stream, and with it the session.
        lines = stream.aiter_lines()
        endpoint = ""
        while not endpoint.startswith("data:"):
            endpoint = await anext(lines)
        endpoint = endpoint.removeprefix("data:").strip()
        assert endpoint.startswith("/messages/?session_id=")
        as_b = await http.post(f"{url}{endpoint}", json=INITIALIZE, headers=bearer(key_b))
        unknown_to_b = await http.post(
            f"{url}/messages/?session_id={uuid.uuid4().hex}", json=INITIALIZE, headers=bearer(key_b)
        )
        as_nobody = await http.post(f"{url}{endpoint}", json=INITIALIZE)
        as_a = await http.post(f"{url}{endpoint}", json=INITIALIZE, headers=bearer(key_a))
    assert as_b.status_code == unknown_to_b.status_code == 404
    assert as_b.content == unknown_to_b.content
    assert as_nobody.status_code == 401
    assert as_a.status_code == 202


async def test_twenty_concurrent_sessions_across_four_tenants_stay_in_their_own(keyed: Keyed) -> None:
    url, bank = keyed.server.url, unique("harbour")
    tags = [unique("owner").replace("_", "") for _ in keyed.keys]
    failures: list[str] = []
    checked = 0

    async def session(number: int) -> None:
        nonlocal checked
        tenant = number % 4
        tag, mode = tags[tenant], MODES[number % len(MODES)]
        mine: list[str] = []
        async with mcp_client(url, keyed.keys[tenant], mode) as client:
            for step in range(25):
                if step % 2 == 0:
                    text = f"{tag} session {number} note {step}: the lighthouse keeper logs the tide"
                    result = await client.call_tool("retain", {"content": text, "bank": bank})
                    mine.append(text)
                else:
                    result = await client.call_tool(
                        "recall", {"query": "lighthouse tide", "bank": bank, "max_results": 100, "max_tokens": 20000}
                    )
                if result.is_error:
                    failures.append(f"session {number} step {step}: {result.content[0].text}")
                    continue
                if step % 2:
                    texts = [m["text"] for m in result.structured_content["memories"]]
                    strays = [t for t in texts if not t.startswith(f"{tag} ")]
                    if strays or not set(mine) <= set(texts):
                        failures.append(f"session {number} step {step}: strays {strays[:2]}, mine missing")
                    checked += len(texts)

    async with anyio.create_task_group() as group:
        for number in range(20):
            group.start_soon(session, number)
    assert failures == [], keyed.server.log()[-6000:]
    assert checked > 0


async def test_keys_never_reach_the_log(keyed: Keyed) -> None:
    wrong = unique("wrongkey")
    async with httpx2.AsyncClient() as http:
        refused = await http.post(f"{keyed.server.url}/mcp", json=INITIALIZE, headers={**ACCEPT, **bearer(wrong)})
    assert refused.status_code == 401
    for key in keyed.keys:
        async with mcp_client(keyed.server.url, key) as client:
            await call(client, "list_banks")
    log = keyed.server.log()
    assert "listening on" in log and "POST /mcp" in log
    for secret in [*keyed.keys, wrong]:
        assert secret not in log
