"""Who is looking: a signed-in person's session, or everyone when auth is off.

A session id is 32 random bytes, held by the browser in a cookie and by the database only as
its SHA-256 digest. The row also holds a binding to the key the session was opened with (an
HMAC of the key's digest keyed by the session id, so the row alone says nothing about the key):
on every request the binding is checked against the key map, so a key taken out of the map ends
its sessions at their next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from mcp_server.store.sessions import SessionRow, SessionStore
from mcp_server.tenancy import Tenant, TenantDirectory, digest_key, key_binding

IDLE_TIMEOUT = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)
SECURE_COOKIE = "__Host-bulkhead_session"
LOOPBACK_COOKIE = "bulkhead_session"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The tenant a request may see, and the CSRF token its forms must carry."""

    tenant: Tenant
    csrf_token: str
    signed_in: bool
    """False when auth is off: there is no session, and no sign-out."""
    session_digest: bytes | None = None


def _token(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).decode().rstrip("=")


def _id_digest(session_id: str) -> bytes:
    return hashlib.sha256(b"bulkhead-session:" + session_id.encode()).digest()


class Sessions:
    """Signs people in and out, and finds the viewer of each request.

    `secure`: the dashboard is reached over HTTPS (or from beyond this machine), so the cookie is
    `Secure` and takes the `__Host-` prefix. On loopback over plain HTTP it is neither.
    """

    def __init__(self, directory: TenantDirectory, store: SessionStore, *, secure: bool) -> None:
        self.directory = directory
        self.store = store
        self.secure = secure
        self.cookie = SECURE_COOKIE if secure else LOOPBACK_COOKIE
        # With auth off there is no session to hold a CSRF secret: the process holds one.
        self._open_token = _token(os.urandom(32))

    @property
    def auth_enabled(self) -> bool:
        """Whether a person must sign in."""
        return self.directory.auth_enabled

    async def viewer(self, request: Request) -> Viewer | None:
        """The viewer of `request`: the session's tenant, the default tenant with auth off, or None."""
        if not self.auth_enabled:
            return Viewer(self.directory.default, self._open_token, signed_in=False)
        session_id = request.cookies.get(self.cookie)
        if not session_id or len(session_id) > 100:
            return None
        digest = _id_digest(session_id)
        row = await self.store.touch(digest, idle=IDLE_TIMEOUT)
        if row is None:
            return None
        tenant = self.directory.keys.resolve_binding(row.key_binding, session_id.encode())
        if tenant is None or tenant.schema != row.schema:
            # Its key was taken out of the map (or now names another schema): the session ends.
            await self.store.delete(digest)
            return None
        return Viewer(tenant, _token(row.csrf_secret), signed_in=True, session_digest=digest)

    async def sign_in(self, key: str, response: Response) -> Tenant | None:
        """Open a session for `key` and set its cookie on `response`; None (and no cookie) for a wrong key."""
        tenant = self.directory.keys.resolve(key)
        if tenant is None:
            return None
        session_id = secrets.token_urlsafe(32)
        row = SessionRow(
            schema=tenant.schema,
            key_binding=key_binding(digest_key(key), session_id.encode()),
            csrf_secret=os.urandom(32),
        )
        await self.store.create(_id_digest(session_id), row, idle=IDLE_TIMEOUT, lifetime=LIFETIME)
        response.set_cookie(self.cookie, session_id, path="/", secure=self.secure, httponly=True, samesite="strict")
        return tenant

    async def sign_out(self, viewer: Viewer, response: Response) -> None:
        """Delete the viewer's session and its cookie."""
        if viewer.session_digest is not None:
            await self.store.delete(viewer.session_digest)
        response.delete_cookie(self.cookie, path="/", secure=self.secure, httponly=True, samesite="strict")


def csrf_matches(viewer: Viewer, given: str | None) -> bool:
    """Whether a form's CSRF token is the viewer's, compared in constant time."""
    return given is not None and hmac.compare_digest(viewer.csrf_token.encode(), given.encode())
