"""How a tool call learns which tenant it serves: from the credential, never from an argument.

- stdio: `FixedTenant`, the tenant of `BULKHEAD_API_KEY`, resolved before the first message;
- HTTP: `BearerTenant`. With auth off, the default tenant for everyone; with auth on, the tenant
  of the bearer key on the request. A stateful session (streamable HTTP after `initialize`, or
  SSE) only accepts requests carrying the key that opened it, so this is the tenant of the
  request that opened the session; clients of the revision without a handshake are bound per
  request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mcp_server.server.auth import request_tenant
from mcp_server.tenancy import Tenant, TenantDirectory


class Binding(Protocol):
    """Where the tenant of the call being served comes from."""

    def tenant(self) -> Tenant:
        """The bound tenant; raises if there is none (the call must not run)."""
        ...


@dataclass(frozen=True, slots=True)
class FixedTenant:
    """One tenant for the whole process: a stdio session."""

    bound: Tenant

    def tenant(self) -> Tenant:
        return self.bound


@dataclass(frozen=True, slots=True)
class BearerTenant:
    """The tenant of the HTTP request's bearer key (or the default tenant with auth off)."""

    directory: TenantDirectory

    def tenant(self) -> Tenant:
        if not self.directory.auth_enabled:
            return self.directory.default
        tenant = request_tenant()
        if tenant is None:
            # Unreachable over HTTP (the SDK answers 401 first); fail closed all the same.
            raise PermissionError("no tenant is bound to this request")
        return tenant
