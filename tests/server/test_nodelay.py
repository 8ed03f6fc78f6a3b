"""Connections the HTTP server accepts send small writes at once (TCP_NODELAY)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from mcp_server.server.lifecycle import bind

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_accepted_connections_have_nagle_off(host: str) -> None:
    listening = bind(host, 0)
    accepted: asyncio.Queue[int] = asyncio.Queue()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.put_nowait(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
    try:
        _, writer = await asyncio.open_connection(host, listening.getsockname()[1])
        assert await asyncio.wait_for(accepted.get(), 30) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
