"""Serving one stdio session: the agent host launched this process for one tenant."""

from __future__ import annotations

from mcp_server.config import Settings
from mcp_server.runtime import open_runtime
from mcp_server.server.app import build_server
from mcp_server.server.binding import FixedTenant
from mcp_server.tenancy import Tenant, TenantDirectory


async def serve_stdio(settings: Settings, directory: TenantDirectory, tenant: Tenant) -> None:
    """Open the runtime, then answer MCP on stdin/stdout for `tenant` until stdin closes."""
    async with open_runtime(settings, directory) as runtime:
        await build_server(runtime, FixedTenant(tenant)).run_stdio_async()
