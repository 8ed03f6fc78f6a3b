"""Builds the Bulkhead MCP server: its tools and the runtime it serves them from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerMiddleware
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from mcp_server import __version__
from mcp_server.config import Settings
from mcp_server.server.calls import logged_call
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


def describe_invalid_arguments(tool: str, error: ValidationError) -> str:
    """One sentence naming each bad argument and what is wrong with it."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append(f"{where}: {item['msg']}" if item["type"] != "missing" else f"{where} is required")
    return f"invalid arguments for {tool}: {'; '.join(problems)}."


class BulkheadServer(MCPServer[Runtime]):
    """MCPServer whose argument errors read as one sentence without echoing input, and whose
    every tool call leaves one log line (`calls.logged_call`)."""

    _tool_names: frozenset[str] | None = None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Runtime, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if self._tool_names is None:
            self._tool_names = frozenset(tool.name for tool in await self.list_tools())
        with logged_call(name if name in self._tool_names else None, arguments, context):
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as exc:
                if isinstance(exc.__cause__, ValidationError):
                    raise ToolError(describe_invalid_arguments(name, exc.__cause__)) from exc.__cause__
                raise


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

    server = BulkheadServer(
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
