"""Stopping the HTTP server cleanly: let tool calls in flight finish, then close everything.

uvicorn's own shutdown waits for open connections, but event streams (the SSE transport, the
streamable HTTP GET stream) never close by themselves, and sse-starlette's automatic drain would
cut them, and any tool result still on its way, the moment a signal arrives. So Bulkhead takes
the drain over: stop accepting connections, wait (bounded) for the tool calls in flight, and only
then tell the event streams to end, so that uvicorn can finish and the pool can close.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from sse_starlette.sse import AppStatus

logger = logging.getLogger(__name__)

STREAMS_CLOSE_TIMEOUT = 5.0
"""After the event streams are told to end, how long uvicorn waits for connections to close."""


class InFlightCalls:
    """Server middleware that counts the tool calls being handled, so shutdown can wait for them."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        self.count += 1
        try:
            return await call_next(ctx)
        finally:
            self.count -= 1

    async def drained(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for no call to be in flight; True if none is."""
        with anyio.move_on_after(timeout):
            while self.count:
                await anyio.sleep(0.05)
        return not self.count


class GracefulServer(uvicorn.Server):
    """A uvicorn server that drains tool calls before closing streams, and exits normally on a signal."""

    def __init__(self, config: uvicorn.Config, in_flight: InFlightCalls, grace: float) -> None:
        super().__init__(config)
        self._in_flight = in_flight
        self._grace = grace
        # Streams end when Bulkhead says so, not when the signal arrives.
        # sse-starlette does not annotate this function.
        AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Like uvicorn's, without re-raising the signal afterwards: a signal here means a clean stop."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logger.info("stopping: no new connections; waiting up to %.0fs for tool calls in flight", self._grace)
        for server in self.servers:
            server.close()
        if not await self._in_flight.drained(self._grace):
            logger.warning(
                "stopping with %d tool call(s) still in flight after %.0fs", self._in_flight.count, self._grace
            )
        # The last results are written to their streams right after their calls return.
        await anyio.sleep(0.1)
        AppStatus.should_exit = True
        await super().shutdown(sockets)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (port 0 picks a free one); raises OSError if it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Naming the protocol matters: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and accepted sockets inherit it. Without it, a response written in two parts waits for the
    # client's delayed ACK: about 40 ms per request on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
