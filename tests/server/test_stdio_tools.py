"""The five tools as a spawned `bulkhead serve` lists them to the MCP SDK's stdio client.

What the tools do is tested in-process, in tests/memory/test_operations.py."""

from __future__ import annotations

import pytest
from helpers import server_env, stdio_client, unique

pytestmark = pytest.mark.anyio


@pytest.fixture
def env(pg_url: str) -> dict[str, str]:
    """Auth off, on a schema of this test's own."""
    return server_env(pg_url, default_schema=unique("t"))


async def test_lists_five_tools_with_annotations(env: dict[str, str]) -> None:
    async with stdio_client(env) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"retain", "recall", "reflect", "forget", "list_banks"}
    for name in ("recall", "reflect", "list_banks"):
        assert tools[name].annotations.read_only_hint is True
    assert tools["forget"].annotations.destructive_hint is True
    assert tools["retain"].annotations.read_only_hint is False
    for tool in tools.values():
        assert tool.description and tool.output_schema
