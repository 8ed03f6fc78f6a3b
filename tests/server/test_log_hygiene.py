"""What reaches the log: no content, query or key at any level, and one line per record."""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from helpers import call, server_env, unique
from helpers.http import bearer, http_server, mcp_client

from mcp_server.cli.logs import OneLineRecords

pytestmark = pytest.mark.anyio

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")
FORGED = "2020-01-01 00:00:00,000 INFO mcp_server.calls: tool call tenant=other tool=forget bank=x outcome=ok"


@asynccontextmanager
async def sse_session(http: httpx2.AsyncClient, url: str, key: str) -> AsyncIterator[str]:
    """A raw SSE session: yields the endpoint its messages are posted to."""
    async with http.stream("GET", f"{url}/sse", headers=bearer(key)) as stream:
        assert stream.status_code == 200
        lines = stream.aiter_lines()  # held, or the stream and its session close
        endpoint = ""
        while not endpoint.startswith("data:"):
            endpoint = await anext(lines)
        yield endpoint.removeprefix("data:").strip()


async def send_malformed_frames(url: str, key: str, secret: str) -> None:
    """Frames that parse as JSON but are no JSON-RPC message, carrying `secret`, on both transports."""
    frame = {"jsonrpc": "3.0", "id": 1, "method": "tools/call", "params": {"arguments": {"content": secret}}}
    async with httpx2.AsyncClient(timeout=30) as http:
        async with sse_session(http, url, key) as endpoint:
            refused = await http.post(f"{url}{endpoint}", json=frame, headers=bearer(key))
            assert refused.status_code == 400
        refused = await http.post(
            f"{url}/mcp",
            json=frame,
            headers={**bearer(key), "Accept": "application/json, text/event-stream"},
        )
        assert refused.status_code == 400


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
async def test_content_queries_and_keys_never_reach_the_log(pg_url: str, level: str) -> None:
    key, schema = secrets.token_urlsafe(24), unique("hygiene")
    content, query = "CONTENT-" + secrets.token_hex(8), "QUERY-" + secrets.token_hex(8)
    env = server_env(pg_url, tenant_key_map=f"{key}:{schema}", log_level=level)
    with http_server(env) as server:
        for mode in ("legacy", "sse"):
            async with mcp_client(server.url, key, mode) as client:
                await call(client, "retain", content=f"{content} for {mode}", bank="b", context=content)
                found = await call(client, "recall", query=f"{content} {query}", bank="b")
                assert content in str(found)  # the recall result carried the content through the transport
        await send_malformed_frames(server.url, key, content)
        log = server.log()
    assert content not in log and query not in log and key not in log
    assert "Failed to parse message" in log and "input not logged" in log
    if level == "DEBUG":
        assert " DEBUG mcp_server" in log, log


async def test_a_request_cannot_write_a_log_line_of_its_own(pg_url: str) -> None:
    key, schema = secrets.token_urlsafe(24), unique("forged")
    with http_server(server_env(pg_url, tenant_key_map=f"{key}:{schema}", log_level="INFO")) as server:
        async with httpx2.AsyncClient(timeout=30) as http:
            # A session id the SSE transport logs decoded, holding line breaks and whole records.
            await http.post(
                f"{server.url}/messages/?session_id=x%0A{FORGED}%0D%0A{FORGED}%E2%80%A8{FORGED}",
                headers={**bearer(key), "Content-Type": "application/json"},
                content=b"{}",
            )
        log = server.log()
    assert "tenant=other" in log  # the attempts were logged ...
    assert all(RECORD_START.match(line) for line in log.splitlines() if "tenant=other" in line)
    assert not any(line.startswith(FORGED[:10]) for line in log.splitlines())  # ... and forged nothing
    assert "\u2028" not in log and "\r" not in log


def test_every_record_is_one_line_and_tracebacks_hang_under_it() -> None:
    formatter = OneLineRecords(FORMAT)
    record = logging.LogRecord("lib", logging.WARNING, __file__, 1, "got %s", ("a\nb\r\x1b[31m\u2028\x85c",), None)
    assert formatter.format(record).endswith("got a\\nb\\r\\x1b[31m\\u2028\\x85c")
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        failed = logging.LogRecord("lib", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    first, *rest = formatter.format(failed).splitlines()
    assert RECORD_START.match(first) and rest
    assert all(line.startswith("    | ") for line in rest)
    assert any(FORGED in line for line in rest)
