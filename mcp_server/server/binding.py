"""The one place a tool handler learns which tenant it serves.

The tenant comes from the credential the session was opened with, never from a tool argument.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from mcp_server.server.runtime import Runtime
from mcp_server.tenancy import Tenant


class UnboundSessionError(RuntimeError):
    """A request reached a tool without a tenant bound to its session."""


def runtime_of(ctx: Context[Any, Any]) -> Runtime:
    """The server's runtime, from the request context."""
    return ctx.request_context.lifespan_context


def bound_tenant(ctx: Context[Any, Any]) -> Tenant:
    """The tenant bound to this request's session."""
    runtime = runtime_of(ctx)
    if runtime.stdio_tenant is not None:
        return runtime.stdio_tenant
    raise UnboundSessionError("no tenant is bound to this session")
