"""`bulkhead ui`: the dashboard alone, on loopback, for one person, with auth off.

It opens the runtime (the embedded PostgreSQL unless `BULKHEAD_DATABASE_URL` says otherwise)
and serves nothing but the dashboard: no MCP routes, no health check.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from mcp_server.config import Settings
from mcp_server.runtime import open_runtime
from mcp_server.tenancy import TenantDirectory
from mcp_server.web.app import MOUNT_PATH, build_dashboard

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def listen(port: int) -> socket.socket:
    """A listening socket on loopback (port 0 picks a free one); raises OSError if it cannot."""
    sock = socket.create_server((HOST, port))
    sock.set_inheritable(True)
    return sock


async def serve_dashboard(settings: Settings, directory: TenantDirectory, sock: socket.socket) -> None:
    """Serve the dashboard on `sock` for the default schema until SIGTERM or SIGINT."""
    directory = directory.without_auth()
    port = sock.getsockname()[1]

    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{MOUNT_PATH}/", status_code=307)

    async with open_runtime(settings, directory) as runtime:
        dashboard = build_dashboard(runtime, host=HOST)
        app = Starlette(routes=[Route("/", home, methods=["GET"]), Mount(MOUNT_PATH, app=dashboard)])
        config = uvicorn.Config(app, log_config=None, log_level=settings.log_level.lower(), server_header=False)
        logger.info(
            "listening on http://%s:%d: dashboard at %s/ (auth off, schema %s)",
            HOST,
            port,
            MOUNT_PATH,
            directory.default.schema,
        )
        await uvicorn.Server(config).serve(sockets=[sock])
    logger.info("stopped")
