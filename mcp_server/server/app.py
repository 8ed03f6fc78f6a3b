"""Builds the Bulkhead MCP server: its tools and the runtime it serves them from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerMiddleware
from mcp.server.mcpserver import MCPServer

from mcp_server import __version__
from mcp_server.config import Settings
from mcp_server.server.runtime import Runtime, open_runtime
from mcp_server.server.tools import register_tools
from mcp_server.tenancy import Tenant, TenantDirectory

INSTRUCTIONS = (
    "Long-term memory. Use retain to store facts worth keeping, recall to look them up before "
    "answering, reflect for an answer drawn from memory with citations, forget to delete, and "
    "list_banks to see your banks. Banks separate topics; 'default' is used when none is given."
)

RuntimeSource = Callable[[], AbstractAsyncContextManager[Runtime]]
"""Where the server's lifespan gets its runtime: opened for it, or borrowed from the process."""


def build_server(
    settings: Settings,
    directory: TenantDirectory,
    *,
    stdio_tenant: Tenant | None = None,
    runtime: RuntimeSource | None = None,
    auth: AuthSettings | None = None,
    token_verifier: TokenVerifier | None = None,
    middleware: Sequence[ServerMiddleware[Any]] = (),
) -> MCPServer[Runtime]:
    """An MCP server whose lifespan provides the runtime and whose tools serve bound tenants.

    By default the lifespan opens the database itself (one stdio session per process); the HTTP
    transports pass `runtime` so that every session shares the one pool the process opened.
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        source = runtime or (lambda: open_runtime(settings, directory, stdio_tenant=stdio_tenant))
        async with source() as opened:
            yield opened

    server: MCPServer[Runtime] = MCPServer(
        "bulkhead",
        title="Bulkhead memory",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,  # type: ignore[arg-type]
        auth=auth,
        token_verifier=token_verifier,
        middleware=middleware,
    )
    register_tools(server)
    return server
