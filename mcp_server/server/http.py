"""The HTTP transports in one process: streamable HTTP at /mcp, SSE at /sse (+ /messages/),
/healthz (liveness), /readyz (the database answers, migrations applied), /metrics (Prometheus)
and the dashboard at /ui/.

Both transports come from the MCP SDK, with its bearer-auth middleware in front when auth is on;
this module composes them into one Starlette app that shares one runtime (one pool), and runs it
on uvicorn until a signal stops it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from mcp_server.config import Settings
from mcp_server.errors import BulkheadError
from mcp_server.runtime import Runtime, open_runtime
from mcp_server.server.app import build_server
from mcp_server.server.auth import KeyVerifier, auth_settings
from mcp_server.server.binding import BearerTenant
from mcp_server.server.http_guards import BoundedBodies, body_limit, header_deadline, is_loopback, transport_security
from mcp_server.server.lifecycle import STREAMS_CLOSE_TIMEOUT, GracefulServer, InFlightCalls
from mcp_server.server.metrics import Metrics
from mcp_server.server.sessions import SessionQuota
from mcp_server.tenancy import TenantDirectory
from mcp_server.web.app import MOUNT_PATH, build_dashboard

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGE_PATH = "/messages/"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
# A readiness probe that waits longer than this for the database calls it not ready.
READY_TIMEOUT = 5.0


def local_url(host: str, port: int) -> str:
    """`http://host:port`, with an IPv6 address in brackets."""
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}"


def base_url(settings: Settings, host: str, port: int) -> str:
    """The URL clients reach the server at: `BULKHEAD_PUBLIC_URL`, else the listening address."""
    return settings.public_url or local_url(host, port)


async def healthz(_: Request) -> JSONResponse:
    """Liveness, without auth; says nothing about tenants."""
    return JSONResponse({"status": "ok"})


def readiness(runtime: Runtime) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The `/readyz` route: 200 when the database answers and migrations are applied, else 503."""

    async def readyz(_: Request) -> JSONResponse:
        try:
            with anyio.fail_after(READY_TIMEOUT):
                await runtime.check_ready()
        except (BulkheadError, TimeoutError) as exc:
            reason = exc.message if isinstance(exc, BulkheadError) else "the database did not answer in time"
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready"})

    return readyz


def build_http_app(runtime: Runtime, *, host: str, port: int, in_flight: InFlightCalls) -> Starlette:
    """The Starlette app serving both transports over the already-open `runtime`."""
    settings, directory = runtime.settings, runtime.directory
    auth = verifier = None
    if directory.auth_enabled:
        verifier = KeyVerifier(directory)
        auth = auth_settings(base_url(settings, host, port))
    server = build_server(runtime, BearerTenant(directory), auth=auth, token_verifier=verifier, middleware=[in_flight])
    # A retain of the largest allowed content must not be refused before it is read.
    max_body = body_limit(settings.max_content_bytes)
    security = transport_security(settings, host)
    if security is not None:
        logger.debug("DNS-rebinding protection on: Host may be %s", ", ".join(security.allowed_hosts))
    streamable = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=settings.http_stateless,
        session_idle_timeout=settings.session_idle_timeout,
        max_request_body_size=max_body,
        transport_security=security,
        host=host,
    )
    sse = server.sse_app(
        sse_path=SSE_PATH,
        message_path=MESSAGE_PATH,
        max_request_body_size=max_body,
        transport_security=security,
        host=host,
    )

    routes: list[BaseRoute] = list(streamable.routes)
    taken = {getattr(route, "path", None) for route in routes}
    # Keep one route of each path, should the two SDK apps ever share one.
    routes += [route for route in sse.routes if getattr(route, "path", None) not in taken]
    routes.append(Route(HEALTH_PATH, healthz, methods=["GET"]))
    routes.append(Route(READY_PATH, readiness(runtime), methods=["GET"]))
    metrics = Metrics(
        runtime,
        # The SDK keeps its streamable HTTP sessions in a private map; nothing public counts them.
        sessions=lambda: len(getattr(server.session_manager, "_server_instances", {})),
        in_flight=lambda: in_flight.count,
        protected=directory.auth_enabled or not is_loopback(host),
    )
    routes.append(Route(METRICS_PATH, metrics.endpoint, methods=["GET"]))
    # The dashboard reads its session cookie only; the MCP routes read bearer keys only.
    routes.append(Mount(MOUNT_PATH, app=build_dashboard(runtime, host=host, public_url=settings.public_url)))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    # Both SDK apps carry the same bearer-auth middleware; it authenticates, the routes require.
    # The session quota comes after it, so it knows each request's tenant.
    quota = Middleware(
        SessionQuota,
        per_tenant=settings.max_sessions_per_tenant,
        total=settings.max_sessions,
        idle_timeout=settings.session_idle_timeout,
        default_tenant=directory.default.schema,
        streamable_path=MCP_PATH,
        sse_path=SSE_PATH,
    )
    bodies = Middleware(
        BoundedBodies, max_bytes=max_body, timeout=settings.http_body_timeout, paths=(MCP_PATH, MESSAGE_PATH)
    )
    return Starlette(routes=routes, middleware=[bodies, *streamable.user_middleware, quota], lifespan=lifespan)


async def serve_http(settings: Settings, directory: TenantDirectory, sock: socket.socket, *, host: str) -> None:
    """Serve on the listening `sock` until SIGTERM or SIGINT; then drain and close the pool."""
    port = sock.getsockname()[1]
    async with open_runtime(settings, directory) as runtime:
        in_flight = InFlightCalls()
        app = build_http_app(runtime, host=host, port=port, in_flight=in_flight)
        config = uvicorn.Config(
            app,
            log_config=None,  # Bulkhead's own logging: stderr, one format
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=int(STREAMS_CLOSE_TIMEOUT),
            server_header=False,
            http=header_deadline(settings.http_header_timeout),
            limit_concurrency=settings.http_max_connections,
        )
        auth = "bearer keys required" if directory.auth_enabled else f"auth off, schema {directory.default.schema}"
        logger.info(
            "listening on %s: streamable HTTP at %s, SSE at %s (%s)", local_url(host, port), MCP_PATH, SSE_PATH, auth
        )
        await GracefulServer(config, in_flight, settings.shutdown_timeout).serve(sockets=[sock])
    logger.info("stopped")
