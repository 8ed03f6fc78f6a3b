"""Where a timed stretch's CPU went: the server (its event loop apart from its other threads, which
run the embedding model), PostgreSQL (every process of the embedded server), and the client.

Throughput on a small machine is bounded by CPU, not by waiting: dividing what each process spent
by the work done says what each part costs, and dividing the cores by the total says the most the
machine could do at full use. Read with psutil, which the server already depends on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil


def _seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def server_process() -> psutil.Process:
    """The `mcp_server serve` process this process launched (the stdio client's server)."""
    for child in psutil.Process().children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        if "mcp_server" in command and "serve" in command:
            return child
    raise RuntimeError("no mcp_server serve process below this one")


def postgres_processes() -> list[psutil.Process]:
    """The embedded PostgreSQL's postmaster and its children; none for an outside database."""
    if os.environ.get("BULKHEAD_DATABASE_URL") or not os.environ.get("BULKHEAD_DATA_DIR"):
        return []
    pid_file = Path(os.environ["BULKHEAD_DATA_DIR"]) / "pg" / "postmaster.pid"
    try:
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]
    except (OSError, ValueError, IndexError, psutil.Error):
        return []


@dataclass(frozen=True)
class Reading:
    """CPU seconds of each part at one moment; `postgres` is keyed by pid (backends come and go)."""

    server_loop: float
    server_threads: float
    postgres: dict[int, float]
    client: float


def read(server: psutil.Process) -> Reading:
    """CPU seconds spent so far by the server's threads, PostgreSQL's processes and this process."""
    loop = other = 0.0
    for thread in server.threads():
        if thread.id == server.pid:
            loop += thread.user_time + thread.system_time
        else:
            other += thread.user_time + thread.system_time
    postgres: dict[int, float] = {}
    for process in postgres_processes():
        try:
            postgres[process.pid] = _seconds(process)
        except psutil.Error:
            continue
    return Reading(loop, other, postgres, _seconds(psutil.Process()))


@dataclass(frozen=True)
class Split:
    """Milliseconds of CPU per unit of work, by part, over `seconds` of wall time."""

    server_loop: float
    server_threads: float
    postgres: float | None
    client: float
    seconds: float
    units: int

    @property
    def total(self) -> float:
        return self.server_loop + self.server_threads + (self.postgres or 0.0) + self.client

    def describe(self, unit: str, plural: str, cores: int) -> str:
        """One paragraph: the split per unit, the cores used, and the rate full use would allow."""
        if self.total <= 0:
            return f"  CPU per {unit}: none measured"
        busy = self.total * self.units / 1000 / self.seconds
        database = f"PostgreSQL {self.postgres:.1f}" if self.postgres is not None else "PostgreSQL not measured"
        return (
            f"  CPU per {unit}: {self.total:.1f} ms on {busy:.2f} of {cores} cores busy: server "
            f"{self.server_loop + self.server_threads:.1f} (event loop {self.server_loop:.1f}, model threads "
            f"{self.server_threads:.1f}), {database}, client {self.client:.1f};\n"
            f"    at that cost, {cores} cores fully busy would give at most {cores * 1000 / self.total:.0f} {plural}/s"
        )


def between(before: Reading, after: Reading, seconds: float, units: int) -> Split:
    """What each part spent per unit between two readings (a backend started between them counts whole)."""
    per_unit = 1000 / units
    postgres = (
        sum(spent - before.postgres.get(pid, 0.0) for pid, spent in after.postgres.items()) if after.postgres else None
    )
    return Split(
        server_loop=(after.server_loop - before.server_loop) * per_unit,
        server_threads=(after.server_threads - before.server_threads) * per_unit,
        postgres=postgres * per_unit if postgres is not None else None,
        client=(after.client - before.client) * per_unit,
        seconds=seconds,
        units=units,
    )
