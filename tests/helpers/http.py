"""Helpers for HTTP tests: a spawned `bulkhead serve --transport http`, MCP clients for it, and raw
JSON-RPC requests for what an SDK client will not send."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from helpers import REPO

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
STARTUP_TIMEOUT = 60.0
MODES = ("legacy", "auto", "sse")
"""How a test client connects: streamable HTTP with the 2025-11-25 handshake, streamable HTTP in
the newest revision (no handshake), or the SSE transport."""
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
HANDSHAKE_VERSION = "2025-11-25"


@dataclass
class HttpServer:
    """A running `bulkhead serve --transport http` and the file its stderr goes to."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        """Everything the server has written to stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig` and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def spawn(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Start `bulkhead serve --transport http ARGS` with stderr captured to a file."""
    log_path = Path(tempfile.mkstemp(prefix="bulkhead-http-", suffix=".log")[1])
    # The listening address (port 0 picks one) is logged at INFO.
    if env.get("BULKHEAD_LOG_LEVEL") != "DEBUG":
        env = {**env, "BULKHEAD_LOG_LEVEL": "INFO"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", *args],
            env=env,
            cwd=str(REPO),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    return process, log_path


def wait_until_listening(process: subprocess.Popen[bytes], log_path: Path) -> str:
    """The server's base URL, once /healthz answers; fails with the log if it exits or stalls."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        log = log_path.read_text(encoding="utf-8", errors="replace")
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode} before listening:\n{log}")
        found = LISTENING.search(log)
        if found:
            try:
                if httpx2.get(f"{found.group(1)}/healthz", timeout=2).status_code == 200:
                    return found.group(1)
            except httpx2.TransportError:
                pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(f"server did not start listening:\n{log_path.read_text(errors='replace')}")


@contextmanager
def http_server(env: dict[str, str], *args: str) -> Iterator[HttpServer]:
    """A server on a free loopback port for the duration of the block; stopped with SIGTERM after."""
    process, log_path = spawn(env, "--host", "127.0.0.1", "--port", "0", *args)
    try:
        yield HttpServer(process, wait_until_listening(process, log_path), log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log_path.unlink(missing_ok=True)


def bearer(key: str | None) -> dict[str, str]:
    """The Authorization header for `key`, or none."""
    return {"Authorization": f"Bearer {key}"} if key else {}


@asynccontextmanager
async def mcp_client(url: str, key: str | None, mode: str = "legacy") -> AsyncIterator[Client]:
    """A real MCP client session with the server at base `url`, connecting as `mode` says."""
    if mode == "sse":
        async with Client(sse_client(f"{url}/sse", headers=bearer(key)), mode="legacy") as client:
            yield client
        return
    async with (
        httpx2.AsyncClient(headers=bearer(key), timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


def rpc(method: str, params: dict[str, Any] | None = None, id: int | None = 1) -> dict[str, Any]:
    """A JSON-RPC message; a notification when `id` is None."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        message["id"] = id
    if params is not None:
        message["params"] = params
    return message


INITIALIZE = rpc(
    "initialize",
    {"protocolVersion": HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
)


async def open_session(http: httpx2.AsyncClient, url: str, key: str | None) -> str:
    """Open a 2025-era streamable HTTP session with raw requests; return its session id."""
    opened = await http.post(f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, **bearer(key)})
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["mcp-session-id"]
    headers = {**ACCEPT, **bearer(key), "mcp-session-id": session_id, "mcp-protocol-version": HANDSHAKE_VERSION}
    initialized = await http.post(f"{url}/mcp", json=rpc("notifications/initialized", id=None), headers=headers)
    assert initialized.status_code == 202, initialized.text
    return session_id


class ToolError(Exception):
    """The server answered a raw `tools/call` with a tool error."""


async def tool_call(http: httpx2.AsyncClient, url: str, key: str, name: str, **arguments: Any) -> dict[str, Any]:
    """One `tools/call` as its own streamable-HTTP POST (no session); the structured result, or ToolError."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    headers = {**ACCEPT, **bearer(key), "mcp-protocol-version": HANDSHAKE_VERSION}
    response = await http.post(f"{url}/mcp", json=message, headers=headers)
    response.raise_for_status()
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line.removeprefix("data:").strip() for line in response.text.splitlines() if line.startswith("data:")]
        reply = json.loads(data[-1])
    else:
        reply = response.json()
    result = reply["result"]
    if result.get("isError"):
        raise ToolError(result["content"][0]["text"])
    return dict(result["structuredContent"])
