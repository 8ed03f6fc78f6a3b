"""`bulkhead smoke`: start the stdio server and use it through a real MCP client session."""

from __future__ import annotations

import os
import sys
import uuid

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, TextContent

BANK = "bulkhead-smoke"


def _say(step: str, text: str) -> None:
    print(f"[{step}] {text}", flush=True)


async def run_smoke() -> None:
    """Retain a fact, recall it, reflect on it, then forget it; raise if any step fails."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "serve"], env=dict(os.environ))
    document = f"smoke-{uuid.uuid4()}"
    async with Client(params, mode="legacy") as client:
        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        _say("tools", ", ".join(tools))
        fact = "The smoke test's favourite colour is teal, chosen on a rainy Tuesday."
        retained = await client.call_tool(
            "retain", {"content": fact, "bank": BANK, "document_id": document, "tags": ["smoke"]}
        )
        _say("retain", _text(retained))
        recalled = await client.call_tool("recall", {"query": "favourite colour", "bank": BANK})
        _say("recall", _text(recalled))
        if not any(m["text"] == fact for m in (recalled.structured_content or {}).get("memories", [])):
            raise RuntimeError("recall did not return the memory just retained")
        reflected = await client.call_tool("reflect", {"query": "What is the favourite colour?", "bank": BANK})
        _say("reflect", f"{_text(reflected)} (mode {(reflected.structured_content or {}).get('mode')})")
        forgotten = await client.call_tool("forget", {"bank": BANK, "document_id": document})
        _say("forget", _text(forgotten))
    print("smoke: ok", flush=True)


def _text(result: CallToolResult) -> str:
    """The text part of a tool result; raises if the call failed."""
    text = next((part.text for part in result.content if isinstance(part, TextContent)), "no detail")
    if result.is_error:
        raise RuntimeError(f"tool call failed: {text}")
    return text
