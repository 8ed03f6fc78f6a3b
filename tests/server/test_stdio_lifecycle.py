"""A stdio server's life as an agent host (or a person at a terminal) sees it: start, signals, end.

The server must stop with status 0 on SIGINT, SIGTERM, SIGHUP and the end of stdin, leave no
half-written call behind, and let go of the embedded PostgreSQL, so that the last process to
leave a shared data folder stops the database even when another holder was killed outright.
"""

from __future__ import annotations

import json
import os
import pty
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import asyncpg
import psutil
import pytest
from helpers import REPO, server_env, unique

from mcp_server.memory.chunking import chunk_text

pytestmark = pytest.mark.anyio

# Generous: a server that ignores a signal hangs for good, and this only keeps the suite moving.
HANG = 60.0
HINT = "waiting for an MCP client on stdin"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}


SPAWNED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_server_outlives_its_test() -> Iterator[None]:
    """A server a failing test left running is killed, so it holds no database after the test."""
    yield
    while SPAWNED:
        process = SPAWNED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def spawn(env: dict[str, str], stdin: int | IO[bytes] = subprocess.PIPE) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "serve"],
        cwd=REPO,
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    SPAWNED.append(process)
    return process


def read_line(stream: IO[bytes]) -> bytes:
    """One line from `stream`, failing (not hanging) if none comes."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        assert selector.select(HANG), "no line came"
    return stream.readline()


def send(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()


def start_session(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A spawned server that has answered `initialize`."""
    process = spawn(env)
    assert process.stdout is not None
    send(process, INITIALIZE)
    reply = json.loads(read_line(process.stdout))
    assert reply["id"] == 1 and "result" in reply, reply
    send(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    return process


def holders(data_dir: Path) -> list[int]:
    return list(json.loads((data_dir / "pg" / ".handle_pids.json").read_text()))


def postgres_running(data_dir: Path) -> bool:
    """Whether the embedded PostgreSQL of `data_dir` is up (its postmaster.pid names a live process)."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def embedded_env(data_dir: Path) -> dict[str, str]:
    return server_env(None, data_dir=str(data_dir), embedder="none", log_level="INFO")


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "SIGHUP", "end of stdin"])
def test_stdio_serve_stops_cleanly_and_releases_the_embedded_database(tmp_path: Path, stop: str) -> None:
    process = start_session(embedded_env(tmp_path))
    assert process.pid in holders(tmp_path) and postgres_running(tmp_path)
    if stop == "end of stdin":
        assert process.stdin is not None
        process.stdin.close()
    else:
        process.send_signal(getattr(signal, stop))
    assert process.wait(HANG) == 0
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert "Traceback" not in stderr, stderr
    assert holders(tmp_path) == [] and not postgres_running(tmp_path)


async def test_a_call_in_flight_at_sigterm_is_finished_or_abandoned_whole(pg_url: str) -> None:
    schema = unique("sig")
    process = start_session(server_env(pg_url, default_schema=schema, embedder="none"))
    content = " ".join(f"Sentence {n} about the signal test, long enough to be split into chunks." for n in range(4000))
    call = {"name": "retain", "arguments": {"content": content, "bank": "notes", "document_id": "big"}}
    send(process, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
    process.send_signal(signal.SIGTERM)
    assert process.wait(HANG) == 0
    conn = await asyncpg.connect(pg_url)
    try:
        stored = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".memories')
        assert stored  # the schema was provisioned at start-up, before the session began
        memories = await conn.fetchval(f'SELECT count(*) FROM "{schema}".memories')
        documents = await conn.fetchval(f'SELECT count(*) FROM "{schema}".documents')
    finally:
        await conn.close()
    # All of the document or none of it: never some of its chunks.
    assert (documents, memories) in {(0, 0), (1, len(chunk_text(content)))}


def test_a_killed_holder_is_pruned_so_the_last_one_out_stops_the_database(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    first, second = start_session(env), start_session(env)
    assert sorted(holders(tmp_path)) == sorted([first.pid, second.pid])
    first.kill()  # SIGKILL: no handler runs, so its pid stays listed
    first.wait(HANG)
    assert first.pid in holders(tmp_path)
    # The next process to start drops the dead holder before joining.
    third = start_session(env)
    assert sorted(holders(tmp_path)) == sorted([second.pid, third.pid])
    second.send_signal(signal.SIGTERM)
    assert second.wait(HANG) == 0
    assert holders(tmp_path) == [third.pid] and postgres_running(tmp_path)
    third.kill()
    third.wait(HANG)
    # The last live holder stops the database even though a dead one was listed when it began to stop.
    fourth = start_session(env)
    assert holders(tmp_path) == [fourth.pid]
    assert fourth.stdin is not None
    fourth.stdin.close()
    assert fourth.wait(HANG) == 0
    assert holders(tmp_path) == [] and not postgres_running(tmp_path)


def test_two_holders_one_killed_then_the_other_stops_leaves_no_postgres(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    killed, survivor = start_session(env), start_session(env)
    killed.kill()
    killed.wait(HANG)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(HANG) == 0
    assert holders(tmp_path) == [] and not postgres_running(tmp_path)


def test_on_a_terminal_serve_says_what_it_waits_for_and_ctrl_c_stops_it(pg_url: str) -> None:
    main, terminal = pty.openpty()
    try:
        process = spawn(server_env(pg_url, default_schema=unique("tty"), embedder="none"), stdin=terminal)
        assert process.stderr is not None
        line = read_line(process.stderr).decode()
        assert HINT in line and "agent host" in line and "bulkhead smoke" in line, line
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(HANG) == 0
    finally:
        os.close(main)
        os.close(terminal)


def test_on_a_pipe_serve_prints_no_hint(pg_url: str) -> None:
    process = spawn(server_env(pg_url, default_schema=unique("pipe"), embedder="none"))
    _, stderr = process.communicate(b"", timeout=HANG)
    assert process.returncode == 0
    assert HINT not in stderr.decode()


def exchange(pg_url: str, tmp_path: Path, *, stdin_from_file: bool, stderr_on_stdout: bool) -> list[dict[str, Any]]:
    """Serve `initialize` and a ping from stdin, with stdin a pipe or a file and stderr apart or merged."""
    lines = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"},
    ]
    requests = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    env = server_env(pg_url, default_schema=unique("wire"), embedder="none", log_level="INFO")
    feed = tmp_path / "requests.jsonl"
    feed.write_bytes(requests)
    with feed.open("rb") as from_file:
        process = subprocess.run(
            [sys.executable, "-m", "mcp_server", "serve"],
            cwd=REPO,
            env=env,
            stdin=from_file if stdin_from_file else None,
            input=None if stdin_from_file else requests,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stderr_on_stdout else subprocess.PIPE,
            timeout=HANG,
            check=False,
        )
    assert process.returncode == 0, process.stderr
    # With stderr merged, its log lines sit between the replies: keep the JSON-RPC ones.
    return [json.loads(line) for line in process.stdout.splitlines() if line.startswith(b'{"jsonrpc"')]


# A pipe both ways (the event loop reads and writes), and a file in with stderr merged into
# stdout (a thread reads, a thread writes).
@pytest.mark.parametrize(("stdin_from_file", "stderr_on_stdout"), [(False, False), (True, True)])
def test_requests_from_a_pipe_or_a_file_are_answered_with_stderr_apart_or_merged(
    pg_url: str, tmp_path: Path, stdin_from_file: bool, stderr_on_stdout: bool
) -> None:
    """A pipe is served by the event loop; a file, or a stdout that is stderr's pipe too, by threads."""
    replies = exchange(pg_url, tmp_path, stdin_from_file=stdin_from_file, stderr_on_stdout=stderr_on_stdout)
    assert [reply["id"] for reply in replies] == [1, 2]
    assert "result" in replies[0] and replies[1]["result"] == {}


def test_the_pipes_are_left_blocking_for_whoever_shares_them(pg_url: str) -> None:
    """The event loop makes the pipes non-blocking while it serves them; they are given back blocking."""
    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_server", "serve"],
            cwd=REPO,
            env=server_env(pg_url, default_schema=unique("blocking"), embedder="none"),
            stdin=read_in,
            stdout=write_out,
            stderr=subprocess.DEVNULL,
        )
        SPAWNED.append(process)
        os.write(write_in, json.dumps(INITIALIZE).encode() + b"\n")
        with os.fdopen(os.dup(read_out), "rb") as replies:
            assert json.loads(read_line(replies))["id"] == 1
        os.close(write_in)
        write_in = -1
        assert process.wait(HANG) == 0
        # The server's ends are descriptions shared with this process: their flags are ours too.
        assert os.get_blocking(read_in) and os.get_blocking(write_out)
    finally:
        for fd in (read_in, write_in, read_out, write_out):
            if fd >= 0:
                os.close(fd)


def test_a_cancellation_naming_no_request_leaves_the_session_serving(pg_url: str) -> None:
    """A `notifications/cancelled` whose requestId is not an id (a list, an object) changes nothing."""
    process = start_session(server_env(pg_url, default_schema=unique("cancel"), embedder="none"))
    assert process.stdout is not None
    for odd in ([1], {"id": 1}, None):
        send(process, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": odd}})
    send(process, {"jsonrpc": "2.0", "id": 2, "method": "ping"})
    assert json.loads(read_line(process.stdout)) == {"jsonrpc": "2.0", "id": 2, "result": {}}
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(HANG) == 0
