"""`bulkhead smoke`: start the stdio server and use it through a real MCP client session.

The settings, the key and the database are checked here first, so that whatever stops the
server stops the smoke test with the server's own line and exit code. The test works in a bank
of its own and deletes that bank at the end, whether it passed or not, so it leaves nothing
behind that `list_banks` (or a model) would see.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import CallToolResult, TextContent

from mcp_server.config import load_settings
from mcp_server.errors import Misconfigured, find_error
from mcp_server.memory import operations
from mcp_server.runtime import open_runtime
from mcp_server.server.stdio import stdio_tenant
from mcp_server.tenancy import TenantDirectory

FACT = "The smoke test's favourite colour is teal, chosen on a rainy Tuesday."


def _say(step: str, text: str) -> None:
    print(f"[{step}] {text}", flush=True)


async def run_smoke() -> None:
    """Retain a fact, recall it, reflect on it, then forget its bank; raise if any step fails."""
    settings = load_settings()
    directory = TenantDirectory.from_settings(settings)
    tenant = stdio_tenant(settings, directory)
    bank = f"smoke-{uuid.uuid4().hex[:12]}"
    async with open_runtime(settings, directory) as runtime:
        # Holding the runtime keeps a shared embedded PostgreSQL up between the two processes.
        store = await runtime.store_for(tenant)
        try:
            await _session(bank)
        finally:
            await operations.forget(store, bank=bank, memory_ids=None, document_id=None, whole_bank=True)
        if bank in {b.bank for b in (await operations.list_banks(store)).banks}:
            raise Misconfigured(f"smoke: bank {bank!r} was still there after forgetting it")
    print("smoke: ok", flush=True)


async def _session(bank: str) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "serve"], env=dict(os.environ))
    # The server's log is not the smoke test's output; its reason for failing comes back over MCP.
    with tempfile.TemporaryFile("w+") as server_log:
        try:
            async with Client(stdio_client(params, errlog=server_log), mode="legacy") as client:
                await _steps(client, bank)
        except BaseException as exc:
            known = find_error(exc)
            if known is not None:
                raise known from None
            reason = _first_error(exc)
            if reason is None:
                raise
            raise Misconfigured(f"smoke failed: {reason}") from None


async def _steps(client: Client, bank: str) -> None:
    tools = sorted(tool.name for tool in (await client.list_tools()).tools)
    _say("tools", ", ".join(tools))
    _say("retain", _text("retain", await client.call_tool("retain", {"content": FACT, "bank": bank})))
    recalled = await client.call_tool("recall", {"query": "favourite colour", "bank": bank})
    _say("recall", _text("recall", recalled))
    if not any(m["text"] == FACT for m in _structured(recalled).get("memories", [])):
        raise Misconfigured("smoke failed: recall did not return the memory just retained")
    reflected = await client.call_tool("reflect", {"query": "What is the favourite colour?", "bank": bank})
    _say("reflect", f"{_text('reflect', reflected)} (mode {_structured(reflected).get('mode')})")
    forgotten = await client.call_tool("forget", {"bank": bank, "whole_bank": True})
    _say("forget", _text("forget", forgotten))


def _structured(result: CallToolResult) -> dict[str, Any]:
    return result.structured_content or {}


def _text(tool: str, result: CallToolResult) -> str:
    """The text part of a tool result; raises if the call failed."""
    text = next((part.text for part in result.content if isinstance(part, TextContent)), "no detail")
    if result.is_error:
        raise Misconfigured(f"smoke failed: {tool}: {text}")
    return text


def _first_error(exc: BaseException) -> str | None:
    """The first line of the first error in `exc` (an interruption is not an error: None)."""
    if isinstance(exc, BaseExceptionGroup):
        return next((r for r in map(_first_error, exc.exceptions) if r), None)
    if not isinstance(exc, Exception):
        return None
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
