"""Open HTTP sessions are capped per tenant: one tenant cannot lock the others out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx2
import pytest
from helpers import server_env, unique
from helpers.http import HttpServer, bearer, http_server

pytestmark = pytest.mark.anyio

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
KEYS = ("greedy", "other")
TENANT_REFUSAL = "this tenant already has 3 open sessions, its limit; close one (or let one expire) and retry."


@pytest.fixture(scope="module")
def server(pg_url: str) -> Iterator[HttpServer]:
    key_map = ";".join(f"{key}-key:{unique(key)}" for key in KEYS)
    env = server_env(pg_url, tenant_key_map=key_map, max_sessions_per_tenant="3", max_sessions="8")
    with http_server(env) as running:
        yield running


async def initialize(http: httpx2.AsyncClient, url: str, key: str) -> httpx2.Response:
    return await http.post(f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, **bearer(key)})


@asynccontextmanager
async def sse_stream(http: httpx2.AsyncClient, url: str, key: str) -> AsyncIterator[int]:
    """An SSE session held open for the block; yields the status it was answered with."""
    async with http.stream("GET", f"{url}/sse", headers=bearer(key)) as stream:
        if stream.status_code == 200:
            lines = stream.aiter_lines()  # held, or the stream closes
            while not (await anext(lines)).startswith("data:"):
                pass
        yield stream.status_code


async def test_a_tenant_at_its_session_limit_is_refused_and_others_are_not(server: HttpServer) -> None:
    url = server.url
    async with httpx2.AsyncClient(timeout=30) as http, AsyncExitStack() as streams:
        opened = [await initialize(http, url, "greedy-key") for _ in range(2)]
        assert [r.status_code for r in opened] == [200, 200]
        assert await streams.enter_async_context(sse_stream(http, url, "greedy-key")) == 200
        # Three open (two streamable, one SSE): both transports refuse a fourth, for this tenant only.
        refused = await initialize(http, url, "greedy-key")
        assert refused.status_code == 429 and refused.json()["error"]["message"] == TENANT_REFUSAL
        assert await streams.enter_async_context(sse_stream(http, url, "greedy-key")) == 429
        assert (await initialize(http, url, "other-key")).status_code == 200
        assert await streams.enter_async_context(sse_stream(http, url, "other-key")) == 200
        # A session the tenant ends frees its place.
        ended = await http.delete(
            f"{url}/mcp",
            headers={**ACCEPT, **bearer("greedy-key"), "mcp-session-id": opened[0].headers["mcp-session-id"]},
        )
        assert ended.status_code == 200
        assert (await initialize(http, url, "greedy-key")).status_code == 200


@pytest.fixture(scope="module")
def crowded(pg_url: str) -> Iterator[HttpServer]:
    """A server whose total (4) is below three tenants' shares (3 each)."""
    key_map = ";".join(f"{key}-key:{unique(key)}" for key in ("first", "second", "third"))
    env = server_env(pg_url, tenant_key_map=key_map, max_sessions_per_tenant="3", max_sessions="4")
    with http_server(env) as running:
        yield running


async def test_the_server_total_caps_all_tenants_together_and_frees_with_any_session(crowded: HttpServer) -> None:
    url = crowded.url
    total_refusal = "the server already has 4 open sessions, its limit; retry later."
    async with httpx2.AsyncClient(timeout=30) as http, AsyncExitStack() as streams:
        first = [await initialize(http, url, "first-key") for _ in range(3)]
        assert [r.status_code for r in first] == [200, 200, 200]
        assert await streams.enter_async_context(sse_stream(http, url, "second-key")) == 200
        # Four open in all: every tenant is now refused by the total, on both transports,
        # including those well under their own share.
        for key in ("second-key", "third-key"):
            refused = await initialize(http, url, key)
            assert refused.status_code == 429 and refused.json()["error"]["message"] == total_refusal
            assert await streams.enter_async_context(sse_stream(http, url, key)) == 429
        ended = await http.delete(
            f"{url}/mcp",
            headers={**ACCEPT, **bearer("first-key"), "mcp-session-id": first[0].headers["mcp-session-id"]},
        )
        assert ended.status_code == 200
        assert (await initialize(http, url, "third-key")).status_code == 200
        assert (await initialize(http, url, "second-key")).status_code == 429
