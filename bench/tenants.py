"""Many tenants on one server and one PostgreSQL: first calls, recall spread over all, memory, catalog.

A spawned `bulkhead serve --transport http` (stateless) holds a key file of N tenants whose
schemas do not exist yet. The bench then
  1. makes each tenant's first call (a retain, which creates its role and schema and applies the
     migrations): p50/p95 against the 150 ms target;
  2. recalls across all N tenants in random order, interleaved one for one with recalls of a
     single tenant (the baseline, same run, same load): p50/p95 of each and their ratio;
  3. reads the server's RSS (target <= 300 MiB), the database backends' private memory, and
     the catalog's size before and after (relations and bytes per tenant).

    python bench/tenants.py [--tenants 1000] [--recalls 1000]

Without BULKHEAD_DATABASE_URL it runs on a throwaway embedded PostgreSQL. Not a test.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import anyio
import asyncpg
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import command_line, database, http_servers, key_file, load_average, percentile, say, server_env, tool_call

from mcp_server.store.sql.catalog import CATALOG_SIZE

TOPICS = ["the boiler", "the garden", "a trip to Porto", "the quarterly report", "Miso the cat", "the bakery"]


async def catalog(pg_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(pg_url)
    try:
        row = await conn.fetchrow(CATALOG_SIZE)
        assert row is not None
        return int(row["relations"]), int(row["bytes"])
    finally:
        await conn.close()


async def backend_memory(pg_url: str) -> list[float]:
    """Private (anonymous) memory of each of the server's database backends, in MiB, from /proc."""
    conn = await asyncpg.connect(pg_url)
    try:
        pids = [
            r["pid"] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = 'bulkhead'")
        ]
    finally:
        await conn.close()
    found = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("RssAnon:"):
                found.append(int(line.split()[1]) / 1024)
    return found


async def run(args: argparse.Namespace) -> None:
    say(f"load average before: {load_average()}")
    with database() as pg_url:
        names = [(f"key-{n:05d}-{random.getrandbits(48):012x}", f"bench_t{n:05d}") for n in range(args.tenants)]
        warm = ("key-warm-" + f"{random.getrandbits(48):012x}", "bench_warm")
        keys = key_file([*names, warm])
        before = await catalog(pg_url)
        env = server_env(pg_url, tenant_key_file=str(keys), http_stateless="true", log_level="WARNING")
        env["BULKHEAD_LOG_LEVEL"] = "INFO"  # the listening line
        with http_servers(env) as [server]:
            async with httpx2.AsyncClient(timeout=120) as http:
                # Load the model and warm the pool on a tenant of its own.
                await tool_call(http, server.url, warm[0], "retain", content="Warming up.", bank="notes")
                await tool_call(http, server.url, warm[0], "recall", query="warming", bank="notes")
                rss_warm = server.rss_mib()
                firsts = []
                started = time.perf_counter()
                for n, (key, _) in enumerate(names):
                    t0 = time.perf_counter()
                    await tool_call(http, server.url, key, "retain", content=f"Tenant {n} wrote about {TOPICS[n % 6]}.")
                    firsts.append((time.perf_counter() - t0) * 1000)
                    if (n + 1) % max(1, args.tenants // 10) == 0:
                        say(f"  {n + 1}/{args.tenants} tenants made, {time.perf_counter() - started:.0f} s")
                for n, (key, _) in enumerate(names):
                    await tool_call(
                        http, server.url, key, "retain", content=f"Later, tenant {n} fixed {TOPICS[(n + 1) % 6]}."
                    )
                rss_touched = server.rss_mib()
                spread, single = [], []
                one = names[0][0]
                for i in range(args.recalls):
                    query = f"what about {TOPICS[i % 6]}?"
                    key = random.choice(names)[0]
                    t0 = time.perf_counter()
                    await tool_call(http, server.url, key, "recall", query=query)
                    spread.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    await tool_call(http, server.url, one, "recall", query=query)
                    single.append((time.perf_counter() - t0) * 1000)
                rss_after = server.rss_mib()
                backends = await backend_memory(pg_url)
        after = await catalog(pg_url)
        keys.unlink()
        report(args, firsts, spread, single, (rss_warm, rss_touched, rss_after), backends, before, after)


def report(
    args: argparse.Namespace,
    firsts: list[float],
    spread: list[float],
    single: list[float],
    rss: tuple[float, float, float],
    backends: list[float],
    before: tuple[int, int],
    after: tuple[int, int],
) -> None:
    rss_warm, rss_touched, rss_after = rss
    n = args.tenants
    print(f"command: {command_line()}")
    print(f"load average after: {load_average()}")
    print(f"tenants: {n} (schemas created by their first call), recalls: {args.recalls} of each kind")
    print(
        f"first call (retain that provisions): p50 {percentile(firsts, 50):.1f} ms, p95 {percentile(firsts, 95):.1f} ms"
        f" (target <= 150 ms)"
    )
    p50s, p95s = percentile(spread, 50), percentile(spread, 95)
    p50o, p95o = percentile(single, 50), percentile(single, 95)
    print(f"recall across all {n} tenants, random order: p50 {p50s:.1f} ms, p95 {p95s:.1f} ms")
    print(f"recall of one tenant (baseline, interleaved): p50 {p50o:.1f} ms, p95 {p95o:.1f} ms")
    print(f"ratio all/one: p50 {p50s / p50o:.2f}x, p95 {p95s / p95o:.2f}x")
    print(
        f"server RSS: {rss_warm:.0f} MiB warm (model loaded), {rss_touched:.0f} MiB after touching all, "
        f"{rss_after:.0f} MiB after the recalls (target <= 300 MiB); "
        f"{(rss_after - rss_warm) * 1024 / n:.1f} KiB per tenant"
    )
    if backends:
        print(
            f"database backends of the server: {len(backends)}, private memory {min(backends):.1f}-"
            f"{max(backends):.1f} MiB each"
        )
    print(
        f"catalog: {before[0]} -> {after[0]} relations ({(after[0] - before[0]) / n:.1f} per tenant), "
        f"pg_catalog tables {before[1] / 2**20:.1f} -> {after[1] / 2**20:.1f} MiB "
        f"({(after[1] - before[1]) / n / 1024:.1f} KiB per tenant)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--recalls", type=int, default=1000)
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
