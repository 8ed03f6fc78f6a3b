"""`bulkhead export` memory use does not grow with the schema: its peak RSS at 1k and at 100k memories.

Two schemas are filled directly through the store (lexical only, documents of 1,000 memories);
then `bulkhead export --schema S` runs as a process of its own for each, its output counted and
thrown away, and the bench prints each run's peak resident memory (from the kernel's
accounting of the child), time and lines written, and the ratio of the two peaks.

    python bench/export.py [--small 1000] [--large 100000]

Without BULKHEAD_DATABASE_URL it runs on a throwaway embedded PostgreSQL. Not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import REPO, command_line, database, load_average, say, server_env

CHUNKS = 1000


async def fill(pg_url: str, schema: str, count: int) -> None:
    from mcp_server.config import load_settings
    from mcp_server.runtime import open_runtime
    from mcp_server.store import NewDocument
    from mcp_server.tenancy import TenantDirectory

    settings = load_settings(_env_file=None, database_url=pg_url, embedder="none", default_schema=schema)
    async with open_runtime(settings, TenantDirectory.from_settings(settings)) as runtime:
        store = await runtime.stores.for_schema(schema)
        for start in range(0, count, CHUNKS):
            chunks = [
                f"Memory {n} of {schema}: the tide rose {n % 97} cm at pier {n % 13}."
                for n in range(start, min(count, start + CHUNKS))
            ]
            document = NewDocument(f"doc-{start}", chunks, "bench", ["tide"], {"start": start}, None)
            await store.retain("bank", document)


def export_peak(pg_url: str, schema: str) -> tuple[float, float, int]:
    """Peak RSS (MiB), seconds and lines of one `bulkhead export` process."""
    env = server_env(pg_url, embedder="none", log_level="WARNING")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "export", "--schema", schema],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    lines = sum(1 for _ in process.stdout)
    _, status, usage = os.wait4(process.pid, 0)
    assert status == 0, status
    return usage.ru_maxrss / 1024, time.perf_counter() - started, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    say(f"load average before: {load_average()}")
    with database() as pg_url:
        figures = {}
        for count in (args.small, args.large):
            schema = f"export_bench_{count}"
            say(f"filling {schema} with {count} memories")
            anyio.run(fill, pg_url, schema, count)
            figures[count] = export_peak(pg_url, schema)
        print(f"command: {command_line()}")
        print(f"load average after: {load_average()}")
        for count, (peak, seconds, lines) in figures.items():
            print(f"export of {count} memories: peak RSS {peak:.0f} MiB, {seconds:.1f} s, {lines} lines")
        print(f"peak RSS at {args.large} / at {args.small}: {figures[args.large][0] / figures[args.small][0]:.2f}x")


if __name__ == "__main__":
    main()
