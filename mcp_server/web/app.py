"""The dashboard as one Starlette app, mounted at `/ui` by the HTTP server or served alone by
`bulkhead ui`. It reads credentials from its session cookie only, never from a bearer header."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mcp_server.errors import BulkheadError
from mcp_server.runtime import Runtime
from mcp_server.store.sessions import SessionStore
from mcp_server.web.assets import STATIC, check_htmx
from mcp_server.web.pages import Dashboard, SignInRequired
from mcp_server.web.security import LOOPBACK_NAMES, DashboardGuard, SignInLimiter, host_name, is_loopback
from mcp_server.web.sessions import Sessions

MOUNT_PATH = "/ui"


def build_dashboard(
    runtime: Runtime, *, host: str, public_url: str | None = None, limiter: SignInLimiter | None = None
) -> Starlette:
    """The dashboard over the already-open `runtime`, to be mounted at `MOUNT_PATH`.

    `host` is the address the server listens on and `public_url` the one clients use, if set.
    Served on loopback over plain HTTP, the cookie is not `Secure` (see `Sessions`) and only
    loopback host names are answered, so a DNS-rebinding page cannot read the dashboard.
    """
    check_htmx()
    local = is_loopback(host)
    secure_cookies = not local or (public_url or "").startswith("https://")
    hosts: set[str] = set()
    if local:
        hosts |= LOOPBACK_NAMES
        if public_url:
            hosts.add(host_name(urlsplit(public_url).netloc) or "")
    sessions = Sessions(runtime.directory, SessionStore(runtime.stores.pool), secure=secure_cookies)
    pages = Dashboard(runtime, sessions, limiter)
    routes = [
        Route("/", pages.banks, name="banks", methods=["GET"]),
        Route("/sign-in", pages.sign_in_page, name="sign_in", methods=["GET"]),
        Route("/sign-in", pages.sign_in, methods=["POST"]),
        Route("/sign-out", pages.sign_out, name="sign_out", methods=["POST"]),
        Route("/banks/{bank}/", pages.bank, name="bank", methods=["GET"]),
        Route("/banks/{bank}/memories/{memory_id}", pages.memory, name="memory", methods=["GET"]),
        Route("/banks/{bank}/recall", pages.recall, name="recall", methods=["GET"]),
        Route("/banks/{bank}/reflect", pages.reflect, name="reflect", methods=["GET"]),
        Route("/banks/{bank}/forget", pages.forget_page, name="forget", methods=["GET"]),
        Route("/banks/{bank}/forget", pages.forget, methods=["POST"]),
        Route("/banks/{bank}/export", pages.export, name="export", methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(DashboardGuard, hosts=hosts)],
        exception_handlers={
            BulkheadError: pages.failed,
            HTTPException: pages.failed,
            SignInRequired: pages.failed,
        },
    )
