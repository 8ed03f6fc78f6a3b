"""HTTP serving modes and lifecycle: auth off, stateless, idle sessions, address guard, SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import time

import anyio
import httpx2
import pytest
from helpers import call, connect, server_env, unique
from helpers.http import ACCEPT, INITIALIZE, MODES, bearer, http_server, mcp_client, open_session, spawn

pytestmark = pytest.mark.anyio


async def memory_texts(pg_url: str, schema: str) -> list[str]:
    """What the server stored in `schema`, read directly."""
    conn = await connect(pg_url)
    try:
        rows = await conn.fetch(f'SELECT text FROM "{schema}".memories ORDER BY text')
    finally:
        await conn.close()
    return [row["text"] for row in rows]


async def test_auth_off_serves_every_client_the_default_schema_and_reaps_idle_sessions(pg_url: str) -> None:
    schema = unique("open")
    env = server_env(pg_url, default_schema=schema, session_idle_timeout="1")
    with http_server(env) as server:
        for mode in MODES:
            async with mcp_client(server.url, None, mode) as client:
                await call(client, "retain", content=f"Stored over {mode} without a key.", bank="open")
        # A key means nothing with auth off: it is neither checked nor a way into another schema.
        async with mcp_client(server.url, unique("key")) as client:
            recalled = await call(client, "recall", query="stored without a key", bank="open")
        assert len(recalled["memories"]) == 3

        async with httpx2.AsyncClient(timeout=30) as http:
            session_id = await open_session(http, server.url, None)
            # Wait in growing steps: each look is a request, which would keep the session alive.
            status = 200
            for pause in (1.5, 3, 6, 12):
                await anyio.sleep(pause)
                reply = await http.post(
                    f"{server.url}/mcp",
                    json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                    headers={**ACCEPT, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"},
                )
                status = reply.status_code
                if status == 404:
                    break
        assert status == 404
        assert "idle timeout" in server.log()
        assert server.stop(signal.SIGINT) == 0
    assert await memory_texts(pg_url, schema) == [f"Stored over {mode} without a key." for mode in sorted(MODES)]


async def test_stateless_mode_binds_every_request_to_its_own_key(pg_url: str) -> None:
    key_a, key_b = unique("key"), unique("key")
    schema_a, schema_b = unique("tenant"), unique("tenant")
    env = server_env(pg_url, tenant_key_map=f"{key_a}:{schema_a};{key_b}:{schema_b}", http_stateless="true")
    with http_server(env) as server:
        async with httpx2.AsyncClient(timeout=30) as http:
            opened = await http.post(f"{server.url}/mcp", json=INITIALIZE, headers={**ACCEPT, **bearer(key_a)})
            refused = await http.post(f"{server.url}/mcp", json=INITIALIZE, headers=ACCEPT)
        assert opened.status_code == 200 and "mcp-session-id" not in opened.headers
        assert refused.status_code == 401
        for mode in ("legacy", "auto"):
            async with mcp_client(server.url, key_a, mode) as a, mcp_client(server.url, key_b, mode) as b:
                await call(a, "retain", content=f"A's stateless note over {mode}.", bank="notes")
                assert (await call(b, "recall", query="stateless note", bank="notes"))["memories"] == []
                recalled = await call(a, "recall", query="stateless note", bank="notes")
            assert f"A's stateless note over {mode}." in [m["text"] for m in recalled["memories"]]
        assert server.stop() == 0


def wait_for_exit(process: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    return process.wait(timeout=timeout)


async def test_a_non_loopback_address_without_auth_needs_auth_disabled_said_explicitly(pg_url: str) -> None:
    schema = unique("open")
    process, log_path = spawn(server_env(pg_url, default_schema=schema), "--host", "0.0.0.0", "--port", "0")
    try:
        assert wait_for_exit(process) == 2
        refusal = log_path.read_text()
    finally:
        log_path.unlink(missing_ok=True)
    assert "refusing to serve on 0.0.0.0 without auth" in refusal and "BULKHEAD_AUTH_DISABLED=true" in refusal
    assert "listening" not in refusal

    env = server_env(pg_url, default_schema=schema, auth_disabled="true", log_level="INFO")
    process, log_path = spawn(env, "--host", "0.0.0.0", "--port", "0")
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"listening on http://0\.0\.0\.0:(\d+)", log_path.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            await anyio.sleep(0.1)
        url = f"http://127.0.0.1:{found.group(1)}"
        async with mcp_client(url, None) as client:
            await call(client, "retain", content="Anyone may write here, as the operator chose.")
        process.send_signal(signal.SIGTERM)
        assert wait_for_exit(process) == 0
        log = log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
        log_path.unlink(missing_ok=True)
    assert f"auth is disabled on 0.0.0.0: anyone who can reach it reads and writes schema {schema}" in log


async def waiting_on_a_lock(pg_url: str, schema: str) -> bool:
    """True when some session waits for a lock on a table of `schema`."""
    conn = await connect(pg_url)
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT l.granted",
                schema,
            )
        )
    finally:
        await conn.close()


async def test_sigterm_lets_the_call_in_flight_finish_closes_the_pool_and_exits_zero(pg_url: str) -> None:
    key, schema, wrong = unique("key"), unique("tenant"), unique("wrongkey")
    env = server_env(pg_url, tenant_key_map=f"{key}:{schema}", log_level="DEBUG", shutdown_timeout="60")
    with http_server(env) as server:
        async with httpx2.AsyncClient() as http:
            refused = await http.post(f"{server.url}/mcp", json=INITIALIZE, headers={**ACCEPT, **bearer(wrong)})
        assert refused.status_code == 401
        reply = None
        async with mcp_client(server.url, key) as client:
            await call(client, "retain", content="Written before the signal.", bank="drain")

            async def retain() -> None:
                nonlocal reply
                reply = await client.call_tool("retain", {"content": "Written during shutdown.", "bank": "drain"})

            holder = await connect(pg_url)
            try:
                # Hold the tenant's tables so that the next retain is certainly in flight at SIGTERM.
                await holder.execute("BEGIN")
                await holder.execute(f'LOCK TABLE "{schema}".banks, "{schema}".memories IN EXCLUSIVE MODE')
                async with anyio.create_task_group() as group:
                    group.start_soon(retain)
                    while not await waiting_on_a_lock(pg_url, schema):
                        await anyio.sleep(0.05)
                    server.process.send_signal(signal.SIGTERM)
                    while "waiting up to" not in server.log():
                        await anyio.sleep(0.05)
                    await holder.execute("ROLLBACK")
            finally:
                await holder.close()
        exit_code = server.process.wait(timeout=60)
        log = server.log()
    assert reply is not None and not reply.is_error, reply
    assert exit_code == 0, log
    assert "stopped" in log and "still in flight" not in log
    assert await memory_texts(pg_url, schema) == ["Written before the signal.", "Written during shutdown."]
    assert key not in log and wrong not in log
