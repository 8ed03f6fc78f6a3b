"""What the HTTP face checks before a request reaches a transport.

Bodies: `BoundedBodies` refuses a POST body larger than the largest retain could need
(`body_limit`, scaled to `BULKHEAD_MAX_CONTENT_BYTES`) or holding more JSON values than any
tool takes, before anything parses it, and one whose body is slower than the body timeout.

Slow clients: `HeaderDeadline` closes a connection whose request headers take longer than the
header timeout (uvicorn waits for them forever), and uvicorn's `limit_concurrency` bounds open
connections.

DNS rebinding: on a loopback address, a web page the user opened could point a name it
controls at 127.0.0.1 and talk to the server with the user's browser. The SDK only guards the
exact spellings `127.0.0.1`, `localhost` and `::1`; `transport_security` guards every loopback
bind, allowing the loopback names, the address actually bound and the `BULKHEAD_PUBLIC_URL` host,
on any port, and refusing every other `Host` and `Origin`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from urllib.parse import urlsplit

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from mcp_server.config import Settings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """`host` as a `Host` header spells it: lower case, an IPv6 address in brackets."""
    bare = host.strip("[]").lower()
    return f"[{bare}]" if ":" in bare else bare


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings | None:
    """Rebinding protection for a loopback bind; None (the SDK's default, off) for any other."""
    if not is_loopback(host):
        return None
    names = [*LOOPBACK_NAMES, host_name(host)]
    public = urlsplit(settings.public_url).hostname if settings.public_url else None
    if public:
        names.append(host_name(public))
    names = list(dict.fromkeys(names))
    origins = [f"{scheme}://{name}" for name in names for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        # `name:*` matches the name with any port; a Host header without a port needs `name` itself.
        allowed_hosts=[spelled for name in names for spelled in (name, f"{name}:*")],
        allowed_origins=[spelled for origin in origins for spelled in (origin, f"{origin}:*")],
    )


# -- Request bodies ---------------------------------------------------------------------------

MAX_JSON_VALUES = 20_000
"""More values than any tool takes: 1,000 memory ids, 64 tags, 16 KiB of metadata."""
# Everything in a tool call but its content: context, tags, metadata, ids, and the JSON-RPC frame.
ARGUMENTS_BESIDE_CONTENT = 256 * 1024
# A JSON string literal, escapes included; written so a long one is matched in one step.
JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def body_limit(max_content_bytes: int) -> int:
    """The largest request body worth reading: the largest content, JSON-escaped, and the rest.

    A client escaping every non-ASCII character writes up to 3 bytes for each byte of UTF-8 text.
    """
    return 3 * max_content_bytes + ARGUMENTS_BESIDE_CONTENT


def too_wide(body: bytes, max_values: int = MAX_JSON_VALUES) -> bool:
    """True if `body` holds more than `max_values` JSON values, told without parsing it.

    Values are separated by commas; commas inside strings do not count. The common case costs
    one count of the body; the rest stops at `max_values` string literals.
    """
    if body.count(b",") < max_values:
        return False
    commas, last = 0, 0
    for number, string in enumerate(JSON_STRING.finditer(body), start=1):
        if number > max_values:
            return True
        commas += body.count(b",", last, string.start())
        last = string.end()
    return commas + body.count(b",", last) >= max_values


class BoundedBodies:
    """Reads each POST body to the MCP transports, refusing one too large or too wide for any tool.

    Both refusals come before the body is parsed, so a hostile body costs a count, not the
    seconds that building a million Python objects takes with the event loop held.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout: float, paths: tuple[str, ...]) -> None:
        self.app, self.max_bytes, self.timeout, self.paths = app, max_bytes, timeout, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.paths):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await refuse(send, 413, f"the request body is larger than {self.max_bytes} bytes; send less.")
            return
        chunks: list[bytes] = []
        size, complete = 0, False
        with anyio.move_on_after(self.timeout):
            while not complete:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    await refuse(send, 413, f"the request body is larger than {self.max_bytes} bytes; send less.")
                    return
                chunks.append(chunk)
                complete = not message.get("more_body", False)
        if not complete:
            await refuse(send, 408, f"the request body did not arrive within {self.timeout:g} seconds.")
            return
        body = b"".join(chunks)
        if too_wide(body):
            await refuse(
                send, 413, f"the request holds more than {MAX_JSON_VALUES} JSON values, more than any tool takes."
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def refuse(send: Send, status: int, message: str) -> None:
    """Answer with `status` and a JSON-RPC error holding `message`, one sentence."""
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- Deadlines on reading a request ------------------------------------------------------------


class HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers are slower than
    `header_timeout` seconds: from the connection's start, and from the end of each response."""

    header_timeout = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self._reading_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._reading_request():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _reading_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        if not self._reading_request() and not self.transport.is_closing():
            self.transport.close()


def header_deadline(seconds: float) -> type[HeaderDeadline]:
    """The protocol class for uvicorn's `http` option, with `seconds` for the headers."""
    return type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": seconds})
