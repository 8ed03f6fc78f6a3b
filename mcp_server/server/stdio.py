"""Serving one stdio session: the agent host launched this process for one tenant.

The SDK's own stdio transport reads stdin in a worker thread that a cancellation must wait
for, so a signal could not stop the server until another line (or the end of input) arrived.
Here stdin is read by a daemon thread with plain `os.read` on a private copy of fd 0, which
nothing has to wait for: SIGINT, SIGTERM and SIGHUP stop the server at once, a tool call in
flight is abandoned (its transaction rolls back, so nothing half-written remains), the pool
closes and the hold on the embedded PostgreSQL is released. While serving, fd 0 reads the null
device and fd 1 writes to stderr, so stray output from a library never reaches the protocol.

A failure before the session starts (a wrong key, a database that cannot be reached) is
answered to the client's first request as a JSON-RPC error carrying the same one line that
goes to stderr, because agent hosts show what the client reports and hide stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeAlias

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import mcp_types as types
from anyio.lowlevel import EventLoopToken
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from mcp_server.config import Settings
from mcp_server.errors import BulkheadError, Misconfigured
from mcp_server.runtime import ForeignVectors, Runtime, open_runtime
from mcp_server.server.app import build_server
from mcp_server.server.binding import FixedTenant
from mcp_server.tenancy import Tenant, TenantDirectory

logger = logging.getLogger(__name__)

Incoming: TypeAlias = MemoryObjectReceiveStream[SessionMessage | Exception]
Outgoing: TypeAlias = MemoryObjectSendStream[SessionMessage]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
FLUSH_TIMEOUT = 1.0
"""How long the last replies get to reach the client once the session has ended."""
STARTUP_FAILED = -32603
"""The JSON-RPC error code of the reply to a client whose server could not start (internal error)."""
MAX_REFUSALS = 4
"""How many requests a client whose server could not start gets answered before the process exits."""
TERMINAL_HINT = (
    "bulkhead: waiting for an MCP client on stdin; an agent host starts this command itself "
    "(see the README), so to try it here run `bulkhead smoke`. Ctrl-C stops."
)


def stdio_tenant(settings: Settings, directory: TenantDirectory) -> Tenant:
    """The tenant of a stdio session: the one `BULKHEAD_API_KEY` maps to, or the default."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    if not directory.auth_enabled:
        if key and not settings.auth_configured:
            raise Misconfigured(
                "BULKHEAD_API_KEY is set but no key map is: set BULKHEAD_TENANT_KEY_MAP or BULKHEAD_TENANT_KEY_FILE "
                f"to map it to a schema, or unset BULKHEAD_API_KEY to use schema {directory.default.schema}"
            )
        return directory.default
    if not key:
        raise Misconfigured("auth is on and BULKHEAD_API_KEY is not set; set it to your tenant's API key")
    tenant = directory.resolve(key)
    if tenant is None:
        raise Misconfigured("BULKHEAD_API_KEY is not a known key; check it against the server's key map")
    return tenant


async def serve_stdio(settings: Settings, directory: TenantDirectory) -> None:
    """Answer MCP on stdin/stdout for the tenant of `BULKHEAD_API_KEY` until stdin closes or a signal.

    A start-up failure is raised after it has been answered to the client's first request.
    """
    async with AsyncExitStack() as stack:
        try:
            tenant = stdio_tenant(settings, directory)
            runtime = await stack.enter_async_context(open_runtime(settings, directory))
            await _provision(runtime, tenant)
        except BulkheadError as error:
            await refuse_session(error)
            raise
        await _serve(runtime, tenant)


async def _provision(runtime: Runtime, tenant: Tenant) -> None:
    """Set up the one tenant now, so that a database it cannot use stops start-up, not every call."""
    # A schema whose vectors are not the embedder's still serves: every tool call says how to fix it.
    with contextlib.suppress(ForeignVectors):
        await runtime.store_for(tenant)


async def _serve(runtime: Runtime, tenant: Tenant) -> None:
    server = build_server(runtime, FixedTenant(tenant))
    async with anyio.create_task_group() as tasks:
        await tasks.start(_stop_on_signal, tasks.cancel_scope)
        logger.info("serving stdio for tenant %s", tenant.label)
        if os.isatty(0):
            print(TERMINAL_HINT, file=sys.stderr, flush=True)
        async with stdio_streams() as (incoming, outgoing):
            await server.serve_connection(incoming, outgoing)
        tasks.cancel_scope.cancel()


async def _stop_on_signal(scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    """Cancel `scope` on the first stop signal; reports itself started once the signals are caught."""
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        task_status.started()
        async for received in signals:
            logger.info("stopping on %s", signal.Signals(received).name)
            scope.cancel()
            return


async def refuse_session(error: BulkheadError) -> None:
    """Answer the client's requests with `error` until it gives up, unless a person is at a terminal.

    A client of the handshake-era protocol sends `initialize` first; one of the 2026 revision
    first asks `server/discover` and, refused, falls back to `initialize`. Answering `initialize`
    (or a few requests of any kind) is therefore the end of it.
    """
    if os.isatty(0):
        return
    answered = 0
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tasks:
            await tasks.start(_stop_on_signal, scope)
            async with stdio_streams() as (incoming, outgoing):
                async for item in incoming:
                    if not (isinstance(item, SessionMessage) and isinstance(item.message, types.JSONRPCRequest)):
                        continue
                    refusal = types.JSONRPCError(
                        jsonrpc="2.0",
                        id=item.message.id,
                        error=types.ErrorData(code=STARTUP_FAILED, message=error.for_operator),
                    )
                    await outgoing.send(SessionMessage(refusal))
                    answered += 1
                    if item.message.method == "initialize" or answered >= MAX_REFUSALS:
                        break
            tasks.cancel_scope.cancel()


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[tuple[Incoming, Outgoing]]:
    """The protocol's streams over this process's stdin and stdout, claimed while the block runs."""
    wire_in, wire_out = _claim_std_fds()
    incoming_writer, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_reader = anyio.create_memory_object_stream[SessionMessage](0)
    lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    token = anyio.lowlevel.current_token()
    reader = threading.Thread(
        target=_read_messages, args=(wire_in, incoming_writer, token), name="bulkhead-stdin", daemon=True
    )
    writer = threading.Thread(target=_write_lines, args=(wire_out, lines), name="bulkhead-stdout", daemon=True)
    reader.start()
    writer.start()

    async def forward() -> None:
        async with outgoing_reader:
            async for message in outgoing_reader:
                line = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                lines.put(line.encode("utf-8") + b"\n")

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(forward)
            async with incoming, outgoing:
                yield incoming, outgoing
    finally:
        lines.put(None)
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(writer.join, FLUSH_TIMEOUT)
        _restore_std_fds(wire_in, wire_out)


def _claim_std_fds() -> tuple[int, int]:
    """Private copies of fd 0 and fd 1 for the protocol; fd 0 then reads nothing, fd 1 goes to stderr."""
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    os.dup2(2, 1)
    return wire_in, wire_out


def _restore_std_fds(wire_in: int, wire_out: int) -> None:
    # wire_in stays open: the reader thread may still be blocked on it, and a closed number
    # could be reused under it.
    os.dup2(wire_in, 0)
    os.dup2(wire_out, 1)
    os.close(wire_out)


def _read_messages(fd: int, sink: MemoryObjectSendStream[SessionMessage | Exception], token: EventLoopToken) -> None:
    """Read newline-delimited JSON-RPC from `fd` and hand each message to the event loop."""

    def deliver(line: bytes) -> None:
        item: SessionMessage | Exception
        try:
            item = SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
        except Exception as exc:  # the session answers a malformed message itself
            item = exc
        anyio.from_thread.run(sink.send, item, token=token)

    pending = b""
    try:
        while chunk := os.read(fd, 65536):
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                if line.strip():
                    deliver(line)
        if pending.strip():
            deliver(pending)
        anyio.from_thread.run_sync(sink.close, token=token)
    except Exception:
        # The session is over (the loop or the stream closed) or stdin failed: either way, stop.
        return


def _write_lines(fd: int, lines: queue.SimpleQueue[bytes | None]) -> None:
    """Write each queued line to `fd` in full, until told to stop (None) or the client is gone."""
    while (line := lines.get()) is not None:
        try:
            while line:
                line = line[os.write(fd, line) :]
        except OSError:
            return
