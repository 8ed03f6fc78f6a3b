"""Builds the Bulkhead MCP server: the tools, served over an open runtime for a binding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerMiddleware
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.request_state import RequestStateSecurity
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage
from mcp_types import CallToolResult, InputRequiredResult
from mcp_types import Tool as MCPTool

from mcp_server import __version__
from mcp_server.runtime import Runtime
from mcp_server.server.binding import Binding
from mcp_server.server.calls import perform
from mcp_server.server.schemas import compact_schema, output_schema
from mcp_server.server.tools import TOOLS, instructions, tool_named


class BulkheadServer(MCPServer[Any]):
    """An MCP server whose every tool call takes Bulkhead's call path (`calls.perform`), and
    whose tool schemas are published without pydantic's noise (`schemas.compact_schema`) and
    output schemas in the form clients check results against fastest (`schemas.output_schema`)."""

    def __init__(self, runtime: Runtime, binding: Binding, **options: Any) -> None:
        super().__init__(
            "bulkhead", title="Bulkhead memory", version=__version__, instructions=instructions(), **options
        )
        self.runtime = runtime
        self.binding = binding
        for tool in TOOLS:
            self.add_tool(tool.handler, name=tool.name, description=tool.description, annotations=tool.annotations)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = tool_named(name)
        return await perform(
            tool.name if tool else None,
            tool.default_bank if tool else None,
            arguments,
            self.runtime,
            self.binding,
            lambda: super(BulkheadServer, self).call_tool(name, arguments, context),
        )

    async def serve_connection(
        self, read_stream: ReadStream[SessionMessage | Exception], write_stream: WriteStream[SessionMessage]
    ) -> None:
        """Serve one session over a transport's streams until the read side closes."""
        lowlevel = self._lowlevel_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    async def list_tools(self) -> list[MCPTool]:
        return [
            tool.model_copy(
                update={
                    "input_schema": compact_schema(tool.input_schema),
                    "output_schema": output_schema(tool.output_schema) if tool.output_schema else tool.output_schema,
                }
            )
            for tool in await super().list_tools()
        ]


def build_server(
    runtime: Runtime,
    binding: Binding,
    *,
    auth: AuthSettings | None = None,
    token_verifier: TokenVerifier | None = None,
    middleware: Sequence[ServerMiddleware[Any]] = (),
) -> BulkheadServer:
    """The MCP server for `binding`'s tenants over the already-open `runtime`.

    The state a 2026-07-28 client carries between the rounds of one call (reflect's sampling)
    is sealed with `BULKHEAD_REQUEST_STATE_KEYS` when set, so any replica can resume it; else
    with a key of this process's own.
    """
    keys = runtime.settings.state_keys
    return BulkheadServer(
        runtime,
        binding,
        log_level=runtime.settings.log_level,
        auth=auth,
        token_verifier=token_verifier,
        middleware=middleware,
        request_state_security=RequestStateSecurity(keys=keys) if keys else None,
    )
