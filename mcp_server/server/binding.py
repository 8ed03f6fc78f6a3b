"""The one place a tool handler learns which tenant it serves.

The tenant comes from the credential the session was opened with, never from a tool argument:
- stdio: the tenant of `BULKHEAD_API_KEY`, resolved before the first message;
- HTTP with auth off: the default tenant, for everyone;
- HTTP with auth on: the tenant of the bearer key on the request. A stateful session (streamable
  HTTP after `initialize`, or SSE) only accepts requests carrying the key that opened it, so this
  is the tenant of the request that opened the session; clients of the protocol revision without
  a handshake are bound per request.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from mcp_server.server.auth import request_tenant
from mcp_server.server.runtime import Runtime
from mcp_server.tenancy import Tenant


class UnboundSessionError(RuntimeError):
    """A request reached a tool without a tenant bound to its session."""


def runtime_of(ctx: Context[Any, Any]) -> Runtime:
    """The server's runtime, from the request context."""
    return ctx.request_context.lifespan_context


def bound_tenant(ctx: Context[Any, Any]) -> Tenant:
    """The tenant bound to this request's session; raises `UnboundSessionError` if there is none."""
    runtime = runtime_of(ctx)
    if runtime.stdio_tenant is not None:
        return runtime.stdio_tenant
    if not runtime.directory.auth_enabled:
        return runtime.directory.default
    tenant = request_tenant()
    if tenant is None:
        # Unreachable over HTTP (the SDK answers 401 first); fail closed all the same.
        raise UnboundSessionError("no tenant is bound to this session")
    return tenant
