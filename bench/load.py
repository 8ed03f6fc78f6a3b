"""N concurrent streamable-HTTP clients across T tenants for a fixed time: one server, then three.

Both runs go through the same PgBouncer (transaction mode) in front of one PostgreSQL, with the
servers stateless; in the second, each client sends each call to the next of three replicas.
Each client loops for `--seconds`: a retain, then three recalls of its tenant (a mix an agent
makes). The bench prints calls per second, p50/p99 per tool, errors (target: 0), the ratio of
three replicas to one, and the load average, since the machine's cores are shared.

    python bench/load.py [--clients 32] [--tenants 100] [--seconds 30]

Without BULKHEAD_DATABASE_URL it runs on a throwaway embedded PostgreSQL. Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import (
    Server,
    command_line,
    database,
    http_servers,
    key_file,
    load_average,
    percentile,
    pgbouncer,
    say,
    server_env,
    tool_call,
)

TOPICS = ["the boiler", "the garden", "a trip to Porto", "the quarterly report", "Miso the cat", "the bakery"]


@dataclass
class Tally:
    durations: dict[str, list[float]] = field(default_factory=lambda: {"retain": [], "recall": []})
    errors: list[str] = field(default_factory=list)


async def client(number: int, servers: list[Server], keys: list[str], seconds: float, tally: Tally) -> None:
    key = keys[number % len(keys)]
    rotation = itertools.cycle(servers[number % len(servers) :] + servers[: number % len(servers)])
    deadline = time.monotonic() + seconds
    step = 0
    async with httpx2.AsyncClient(timeout=60) as http:
        while time.monotonic() < deadline:
            tool = "retain" if step % 4 == 0 else "recall"
            topic = TOPICS[(number + step) % len(TOPICS)]
            arguments = (
                {"content": f"Client {number} noted something about {topic} at step {step}."}
                if tool == "retain"
                else {"query": f"what about {topic}?"}
            )
            started = time.perf_counter()
            try:
                await tool_call(http, next(rotation).url, key, tool, **arguments)
                tally.durations[tool].append((time.perf_counter() - started) * 1000)
            except Exception as exc:  # every failure counts, whatever its kind
                tally.errors.append(type(exc).__name__)
            step += 1


async def measure(servers: list[Server], keys: list[str], args: argparse.Namespace) -> tuple[Tally, float]:
    # Every tenant's first call (provisioning) happens before the clock starts.
    async with httpx2.AsyncClient(timeout=120) as http:
        for n, key in enumerate(keys):
            await tool_call(http, servers[n % len(servers)].url, key, "retain", content=f"Tenant {n} begins.")
    tally = Tally()
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for number in range(args.clients):
            group.start_soon(client, number, servers, keys, args.seconds, tally)
    return tally, time.perf_counter() - started


def report(label: str, tally: Tally, elapsed: float) -> float:
    calls = sum(len(d) for d in tally.durations.values())
    rate = calls / elapsed
    parts = [
        f"{tool} p50 {percentile(d, 50):.1f} ms p99 {percentile(d, 99):.1f} ms (n={len(d)})"
        for tool, d in tally.durations.items()
    ]
    errors = f"{len(tally.errors)} ({', '.join(sorted(set(tally.errors)))})" if tally.errors else "0"
    print(f"{label}: {rate:.1f} calls/s; {'; '.join(parts)}; errors {errors}")
    return rate


async def run(args: argparse.Namespace) -> None:
    say(f"load average before: {load_average()}")
    results = {}
    with database() as pg_url, pgbouncer(pg_url, pool_size=args.pool) as bouncer:
        for replicas in (1, 3):
            tenants = [
                (f"key-{replicas}-{n:04d}-{random.getrandbits(40):010x}", f"load{replicas}_t{n:04d}")
                for n in range(args.tenants)
            ]
            keys = key_file(tenants)
            env = server_env(
                bouncer.url,
                database_pooler="transaction",
                http_stateless="true",
                tenant_key_file=str(keys),
                pool_max_size=str(args.server_pool),
            )
            with http_servers(env, replicas) as servers:
                say(f"{replicas} server(s) up; provisioning {args.tenants} tenants, then {args.seconds:.0f} s of load")
                tally, elapsed = await measure(servers, [k for k, _ in tenants], args)
                results[replicas] = (tally, elapsed, [s.rss_mib() for s in servers])
                say(f"  load average now: {load_average()}")
            keys.unlink()
    print(f"command: {command_line()}")
    print(f"load average after: {load_average()}")
    print(
        f"clients: {args.clients}, tenants: {args.tenants}, {args.seconds:.0f} s per run, through PgBouncer "
        f"(transaction mode, {args.pool} server connections), {args.server_pool} connections per server"
    )
    one = report("one server", *results[1][:2])
    three = report("three replicas", *results[3][:2])
    print(f"three replicas / one server: {three / one:.2f}x calls/s")
    print(
        f"server RSS: one {results[1][2][0]:.0f} MiB; replicas "
        + ", ".join(f"{rss:.0f}" for rss in results[3][2])
        + " MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pool", type=int, default=20, help="PgBouncer's server connections (default 20)")
    parser.add_argument("--server-pool", type=int, default=10, help="each server's pool size (default 10)")
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
