"""Open sessions per tenant, so one tenant cannot use up the sessions every tenant shares.

A session is an SSE event stream (`GET /sse`) while it is open, or a streamable HTTP session from
the response that gave it its id until it ends: deleted, answered 404 (expired), or idle (no
request in flight, no open stream) for the SDK's idle timeout. `SessionQuota`, an ASGI
middleware behind the bearer-auth middleware, refuses a request that would open one more
session than its tenant's share or the server's total, with 429 and one sentence, before the
transport sees it. Other tenants are not affected.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.server.auth import TenantAccessToken

SESSION_HEADER = b"mcp-session-id"


@dataclass
class Session:
    """One open session: its tenant, the requests on it now, and when it was last used."""

    tenant: str
    in_flight: int = 0
    last_seen: float = field(default_factory=time.monotonic)


def tenant_of(scope: Scope, default: str) -> str:
    """The schema of the request's key, or `default` when auth is off."""
    user = scope.get("user")
    token = getattr(user, "access_token", None)
    return token.tenant.schema if isinstance(token, TenantAccessToken) else default


class SessionQuota:
    """Caps open sessions per tenant (`per_tenant`) and in all (`total`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_tenant: int,
        total: int,
        idle_timeout: float,
        default_tenant: str,
        streamable_path: str,
        sse_path: str,
    ) -> None:
        self.app = app
        self.per_tenant, self.total, self.idle_timeout = per_tenant, total, idle_timeout
        self.default_tenant = default_tenant
        self.streamable_path, self.sse_path = streamable_path, sse_path
        self.sessions: dict[str, Session] = {}
        self._next_stream = 0

    def open_count(self, tenant: str | None = None) -> int:
        """Sessions open now, of `tenant` or of all; forgets those idle past the timeout."""
        now = time.monotonic()
        for key, session in list(self.sessions.items()):
            if not session.in_flight and now - session.last_seen > self.idle_timeout:
                del self.sessions[key]
        return sum(1 for s in self.sessions.values() if tenant is None or s.tenant == tenant)

    def refusal(self, tenant: str) -> str | None:
        """Why `tenant` may not open a session now, or None if it may."""
        if self.open_count(tenant) >= self.per_tenant:
            return (
                f"this tenant already has {self.per_tenant} open sessions, its limit; close one "
                "(or let one expire) and retry."
            )
        if self.open_count() >= self.total:
            return f"the server already has {self.total} open sessions, its limit; retry later."
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"].rstrip("/"), scope["method"]
        tenant = tenant_of(scope, self.default_tenant)
        if path == self.sse_path and method == "GET":
            await self._sse_stream(tenant, scope, receive, send)
        elif path == self.streamable_path:
            await self._streamable(tenant, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _sse_stream(self, tenant: str, scope: Scope, receive: Receive, send: Send) -> None:
        refused = self.refusal(tenant)
        if refused:
            await _refuse(send, refused)
            return
        self._next_stream += 1
        key = f"sse:{self._next_stream}"
        self.sessions[key] = Session(tenant, in_flight=1)
        try:
            await self.app(scope, receive, send)
        finally:
            self.sessions.pop(key, None)

    async def _streamable(self, tenant: str, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = _header(scope, SESSION_HEADER)
        if session_id is None:
            if scope["method"] == "POST":
                refused = self.refusal(tenant)
                if refused:
                    await _refuse(send, refused)
                    return
            await self.app(scope, receive, self._learning_ids(tenant, send))
            return
        key = f"mcp:{session_id}"
        session = self.sessions.get(key)
        if session is None or session.tenant != tenant:
            await self.app(scope, receive, send)
            return
        session.in_flight += 1
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            session.in_flight -= 1
            session.last_seen = time.monotonic()
            if status == 404 or (scope["method"] == "DELETE" and status < 300):
                self.sessions.pop(key, None)

    def _learning_ids(self, tenant: str, send: Send) -> Send:
        """`send`, noting the id of a session the response opens."""

        async def learning(message: Message) -> None:
            if message["type"] == "http.response.start":
                opened = dict(message.get("headers", [])).get(SESSION_HEADER)
                if opened:
                    self.sessions.setdefault(f"mcp:{opened.decode('latin-1')}", Session(tenant))
            await send(message)

        return learning


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
