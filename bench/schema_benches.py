"""What the benches that time the store on the latency bench's schemas share.

`bench/latency.py` fills those schemas (`bench_10000`, ...) on an embedded PostgreSQL in the user
cache; `bench/small_banks.py` and `bench/read_paths.py` then time parts of the store on them, one
schema after another, and print the load average and the command around their figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import platformdirs

CACHE = platformdirs.user_cache_path("bulkhead") / "bench"

OneSchema = Callable[[str, int], Awaitable[None]]
"""Times one schema: its name and how many calls of each kind to make."""


def say(text: str) -> None:
    """Progress, on stderr: stdout holds the figures."""
    print(text, file=sys.stderr, flush=True)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def timed_ms(work: Awaitable[Any]) -> tuple[float, Any]:
    """Milliseconds `work` took, and what it returned."""
    started = time.perf_counter()
    result = await work
    return (time.perf_counter() - started) * 1000, result


async def _run(title: str, one_schema: OneSchema, args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    print(f"Bulkhead {title}, {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores")
    for schema in args.schemas:
        say(f"timing {schema}")
        await one_schema(schema, args.calls)
    load_after = os.getloadavg()
    print(f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after")
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))


def main(doc: str, title: str, one_schema: OneSchema, *, schemas: list[str], calls: int, calls_help: str) -> None:
    """Parse `--schemas` and `--calls`, then run `one_schema` on each schema in turn."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--schemas", type=lambda text: text.split(","), default=schemas)
    parser.add_argument("--calls", type=int, default=calls, help=calls_help)
    args = parser.parse_args()
    if not os.environ.get("BULKHEAD_DATABASE_URL"):
        os.environ.setdefault("BULKHEAD_DATA_DIR", str(CACHE / "pg"))
    anyio.run(_run, title, one_schema, args)
