"""Builds the Bulkhead MCP server: its tools and the runtime it serves them from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import MCPServer

from mcp_server import __version__
from mcp_server.config import Settings
from mcp_server.server.calls import BulkheadServer
from mcp_server.server.runtime import Runtime, open_runtime
from mcp_server.server.tools import register_tools
from mcp_server.tenancy import Tenant, TenantDirectory

INSTRUCTIONS = (
    "Long-term memory. Use retain to store facts worth keeping, recall to look them up before "
    "answering, reflect for an answer drawn from memory with citations, forget to delete, and "
    "list_banks to see your banks. Banks separate topics; 'default' is used when none is given."
)


def build_server(
    settings: Settings, directory: TenantDirectory, *, stdio_tenant: Tenant | None = None
) -> MCPServer[Runtime]:
    """An MCP server whose lifespan opens the database and whose tools serve bound tenants."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        async with open_runtime(settings, directory, stdio_tenant=stdio_tenant) as runtime:
            yield runtime

    server: MCPServer[Runtime] = BulkheadServer(
        "bulkhead",
        title="Bulkhead memory",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
    )
    register_tools(server)
    return server
