"""The dashboard's request rules: response headers, the host and origin checks, and the sign-in
rate limit. (CSRF tokens belong to sessions: see `sessions`.)"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        # htmx fetches fragments from the dashboard itself.
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
"""Set on every dashboard response, pages, fragments, files and errors alike."""

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str | None:
    """The host name of a `Host` header (`[::1]:8000` -> `::1`), lowercased; None if unreadable."""
    try:
        name = urlsplit("//" + host_header).hostname
    except ValueError:
        return None
    return name.lower() if name else None


class DashboardGuard:
    """ASGI middleware: refuse requests for a host the dashboard is not served as (a DNS-rebinding
    page would name its own), and put the security headers on every response.

    `hosts` empty: any host (the dashboard listens on a public address, behind auth).
    """

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        if self.hosts and host_name(Headers(scope=scope).get("host", "")) not in self.hosts:
            await PlainTextResponse("Unknown host.", status_code=421)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def same_origin(headers: Headers) -> bool:
    """Whether a state-changing request comes from a page of the dashboard itself.

    Browsers say so in `Sec-Fetch-Site`; under `Referrer-Policy: no-referrer` Chromium sends
    `Origin: null` on same-origin form posts, so `Origin` is only consulted when that header is
    missing (older browsers). A client that sends neither is no browser, and so no cross-site
    request; it still needs the CSRF token.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


class SignInLimiter:
    """Failed sign-ins per client, over a sliding window; past the limit every attempt is refused."""

    def __init__(self, *, failures: int = 10, window: float = 300.0, clients: int = 10_000) -> None:
        self.failures, self.window, self.clients = failures, window, clients
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        now = time.monotonic()
        stamps = self._seen.get(client)
        if stamps is None:
            if len(self._seen) >= self.clients:
                # Forget the quietest clients rather than grow without bound.
                for stale in [c for c, s in self._seen.items() if not s or s[-1] < now - self.window]:
                    del self._seen[stale]
            stamps = self._seen[client] = deque()
        while stamps and stamps[0] < now - self.window:
            stamps.popleft()
        return stamps

    def allowed(self, client: str) -> bool:
        """Whether `client` may try to sign in now."""
        return len(self._recent(client)) < self.failures

    def failed(self, client: str) -> None:
        """Count one failed sign-in of `client`."""
        self._recent(client).append(time.monotonic())
