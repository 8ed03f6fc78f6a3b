"""Slow clients: deadlines on headers and bodies, and a bound on open connections."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from helpers import server_env, unique
from helpers.http import HttpServer, http_server

HANG_GUARD = 60.0
"""Only so that a server that never closes fails the test instead of hanging it."""


@pytest.fixture(scope="module")
def server(pg_url: str) -> Iterator[HttpServer]:
    env = server_env(
        pg_url, tenant_key_map=f"slow-key:{unique('slow')}", http_header_timeout="1", http_body_timeout="1"
    )
    with http_server(env) as running:
        yield running


def connection(server: HttpServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=HANG_GUARD)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_connections_whose_headers_never_finish_are_closed(server: HttpServer) -> None:
    held = [connection(server) for _ in range(20)]
    for sock in held:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
    assert [read_all(sock) for sock in held] == [b""] * 20
    # A kept-alive connection gets the same deadline for its next request's headers.
    sock = connection(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answered = b""
    while not answered.endswith(b'{"status":"ok"}'):
        answered += sock.recv(65536)
    assert answered.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    assert read_all(sock) == b""


def test_a_body_slower_than_its_deadline_is_refused(server: HttpServer) -> None:
    sock = connection(server)
    sock.sendall(
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer slow-key\r\n"
        b"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        b'Content-Length: 1000\r\n\r\n{"jsonrpc": '
    )
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"did not arrive within 1 seconds" in answer
    after = connection(server)
    after.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert read_all(after).startswith(b"HTTP/1.1 200")


def test_connections_beyond_the_bound_are_answered_503(pg_url: str) -> None:
    env = server_env(pg_url, default_schema=unique("bound"), http_max_connections="4")
    with http_server(env) as server:
        held = [connection(server) for _ in range(4)]
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        extra = connection(server)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert read_all(extra).startswith(b"HTTP/1.1 503")
        for sock in held:
            sock.close()
