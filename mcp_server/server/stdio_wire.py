"""The protocol's bytes on stdin and stdout: newline-delimited JSON-RPC messages, whole.

A pipe or a socket, which is how an agent host launches a server, is read and written by the
event loop itself: no thread hands each message over (a `ping` over stdio took 1.3-1.6 ms with
a reader and a writer thread, 0.8-1.15 ms without). A terminal or a file is served by two daemon
threads instead: a terminal's file description is shared with the shell and with stderr, and
the event loop would make it non-blocking for them too; the same holds for a stdout that is
the same pipe as stderr. Either way nothing has to wait for a read in progress, so a signal
stops the server at once, and the protocol has private copies of fd 0 and fd 1: while serving,
fd 0 reads the null device and fd 1 writes to stderr, so stray output never reaches the client.
"""

from __future__ import annotations

import asyncio
import os
import queue
import stat
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio
import anyio.from_thread
import anyio.lowlevel
import mcp_types as types
from anyio.lowlevel import EventLoopToken
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

Incoming: TypeAlias = MemoryObjectReceiveStream[SessionMessage | Exception]
Outgoing: TypeAlias = MemoryObjectSendStream[SessionMessage]

FLUSH_TIMEOUT = 1.0
"""How long the last replies get to reach the client once the session has ended."""
READ_SIZE = 65536


def parsed(line: bytes) -> SessionMessage | Exception:
    """One line as a message, or the error the session answers a malformed one with."""
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except Exception as exc:
        return exc


def split_lines(pending: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """The complete, non-blank lines of `pending + chunk`, and what is left of a line begun."""
    *complete, rest = (pending + chunk).split(b"\n")
    return [line for line in complete if line.strip()], rest


class Unanswered:
    """The requests read and not answered yet: the end of input waits for them to be answered.

    A host may write its last request and close stdin at once; the session ends only after the
    reply is written. A request the client cancels needs no reply, so it is not waited for.
    """

    def __init__(self) -> None:
        self._ids: set[types.RequestId] = set()
        self._changed = anyio.Event()

    def read(self, item: SessionMessage | Exception) -> None:
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, types.JSONRPCRequest):
            self._ids.add(message.id)
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            self._answered((message.params or {}).get("requestId"))

    def written(self, message: types.JSONRPCMessage) -> None:
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self._answered(message.id)

    def _answered(self, request_id: object) -> None:
        # A cancellation's requestId is whatever the client wrote: only an id can name a request.
        if isinstance(request_id, str | int) and request_id in self._ids:
            self._ids.discard(request_id)
            self._changed.set()
            self._changed = anyio.Event()

    async def all_answered(self) -> None:
        while self._ids:
            await self._changed.wait()


def served_by_loop(fd: int) -> bool:
    """Whether the event loop may read or write `fd`: a pipe or a socket."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[tuple[Incoming, Outgoing]]:
    """The protocol's streams over this process's stdin and stdout, claimed while the block runs."""
    wire_in, wire_out = _claim_std_fds()
    sink, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_reader = anyio.create_memory_object_stream[SessionMessage](0)
    unanswered = Unanswered()

    async def deliver(item: SessionMessage | Exception) -> None:
        unanswered.read(item)
        await sink.send(item)

    async def end_of_input() -> None:
        await unanswered.all_answered()
        await sink.aclose()

    inbox = _Inbox(deliver, end_of_input)
    try:
        async with anyio.create_task_group() as tasks:
            if served_by_loop(wire_in):
                tasks.start_soon(_read_in_loop, wire_in, inbox)
            else:
                token = anyio.lowlevel.current_token()
                reader = threading.Thread(
                    target=_read_in_thread, args=(wire_in, inbox, token), name="bulkhead-stdin", daemon=True
                )
                reader.start()
            writer: _LoopWriter | _ThreadWriter
            if served_by_loop(wire_out) and not os.path.sameopenfile(wire_out, 2):
                writer = await _LoopWriter.open(wire_out)
            else:
                writer = _ThreadWriter(wire_out)
            forwarded = anyio.Event()
            tasks.start_soon(_forward, outgoing_reader, writer.write, unanswered, forwarded)
            try:
                async with incoming, outgoing:
                    yield incoming, outgoing
            finally:
                # Closing `outgoing` ends the forwarding once the last message is written.
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(FLUSH_TIMEOUT):
                        await forwarded.wait()
                    await writer.close()
            tasks.cancel_scope.cancel()
    finally:
        _restore_std_fds(wire_in, wire_out)


@dataclass(frozen=True, slots=True)
class _Inbox:
    """Where a reader hands what it read: each message, then the end of input."""

    deliver: Callable[[SessionMessage | Exception], Coroutine[Any, Any, None]]
    end: Callable[[], Coroutine[Any, Any, None]]


async def _forward(
    messages: MemoryObjectReceiveStream[SessionMessage],
    write: Callable[[bytes], Awaitable[None]],
    unanswered: Unanswered,
    done: anyio.Event,
) -> None:
    try:
        async with messages:
            async for message in messages:
                line = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await write(line.encode("utf-8") + b"\n")
                unanswered.written(message.message)
    finally:
        done.set()


async def _read_in_loop(fd: int, inbox: _Inbox) -> None:
    """Read `fd` (a pipe or socket) in the event loop and hand each message to the session."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_SIZE)
    # A copy of the descriptor for the transport to own and close; made non-blocking while read.
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(fd), "rb", buffering=0)
    )
    pending = b""
    try:
        while chunk := await reader.read(READ_SIZE):
            complete, pending = split_lines(pending, chunk)
            for line in complete:
                await inbox.deliver(parsed(line))
        if pending.strip():
            await inbox.deliver(parsed(pending))
        await inbox.end()
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        return  # stdin failed, or the session is over: either way, stop reading
    finally:
        transport.close()
        os.set_blocking(fd, True)


def _read_in_thread(fd: int, inbox: _Inbox, token: EventLoopToken) -> None:
    """Read `fd` with blocking reads and hand each message to the event loop."""
    pending = b""
    try:
        while chunk := os.read(fd, READ_SIZE):
            complete, pending = split_lines(pending, chunk)
            for line in complete:
                anyio.from_thread.run(inbox.deliver, parsed(line), token=token)
        if pending.strip():
            anyio.from_thread.run(inbox.deliver, parsed(pending), token=token)
        anyio.from_thread.run(inbox.end, token=token)
    except Exception:
        # The session is over (the loop or the stream closed) or stdin failed: either way, stop.
        return


class _Flow(asyncio.BaseProtocol):
    """What a write pipe tells its writer: when to wait for the client, and when it is gone."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = asyncio.Event()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        self.closed.set()


class _LoopWriter:
    """Writes lines to `fd` (a pipe or socket) from the event loop, waiting while the client is behind."""

    def __init__(self, fd: int, transport: asyncio.WriteTransport, flow: _Flow) -> None:
        self.fd, self.transport, self.flow = fd, transport, flow

    @classmethod
    async def open(cls, fd: int) -> _LoopWriter:
        flow = _Flow()
        # A copy of the descriptor for the transport to own and close; made non-blocking while written.
        transport, _ = await asyncio.get_running_loop().connect_write_pipe(
            lambda: flow, os.fdopen(os.dup(fd), "wb", buffering=0)
        )
        return cls(fd, transport, flow)

    async def write(self, line: bytes) -> None:
        if self.transport.is_closing():
            return  # the client is gone; what it would have read is dropped
        self.transport.write(line)
        await self.flow.writable.wait()

    async def close(self) -> None:
        """Let the last lines reach the client (for at most `FLUSH_TIMEOUT`), then let go of `fd`."""
        self.transport.close()  # flushes what is buffered first
        with anyio.move_on_after(FLUSH_TIMEOUT):
            await self.flow.closed.wait()
        if not self.flow.closed.is_set():
            self.transport.abort()  # the client stopped reading: drop the rest
        os.set_blocking(self.fd, True)


class _ThreadWriter:
    """Writes lines to `fd` with blocking writes, from a daemon thread fed by a queue."""

    def __init__(self, fd: int) -> None:
        self.lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, args=(fd,), name="bulkhead-stdout", daemon=True)
        self.thread.start()

    async def write(self, line: bytes) -> None:
        self.lines.put(line)

    async def close(self) -> None:
        self.lines.put(None)
        await anyio.to_thread.run_sync(self.thread.join, FLUSH_TIMEOUT)

    def _run(self, fd: int) -> None:
        while (line := self.lines.get()) is not None:
            try:
                while line:
                    line = line[os.write(fd, line) :]
            except OSError:
                return


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
    # wire_in stays open: a reader thread may still be blocked on it, and a closed number could
    # be reused under it.
    os.dup2(wire_in, 0)
    os.dup2(wire_out, 1)
    os.close(wire_out)
