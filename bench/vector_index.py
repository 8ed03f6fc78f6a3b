"""What the vector index's build settings cost on every retain, and what they buy at recall.

Retain's PostgreSQL time is mostly the HNSW insert. This bench copies the vectors of the latency
bench's 100k bank (`bench/latency.py` fills it once, in the user cache) into a scratch schema,
holds the first 800 out (real embeddings), and for each (m, ef_construction) asked for, with
Bulkhead's own (16, 64, pgvector's defaults) first as the baseline of the same run:

- builds the index and times the build;
- searches it for 200 of the held-out vectors at recall's `ef_search` (100), and scores the
  30 neighbours found against the exact 30 (a sequential scan): the index's recall;
- inserts the other 600 one at a time, as retains do, and times each insert; then the same
  inserts into a copy without an index, the floor.

It then changes the baseline index's ef_construction in place (`ALTER INDEX ... SET`, which
applies to later inserts only, no rebuild) to the smallest asked for, and times inserts again.

    python bench/vector_index.py [--variants 16:40,16:32] [--schema bench_100000]

Quote the medians and their ratio to the baseline: the machine may be shared. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import anyio
import asyncpg
import platformdirs

CACHE = platformdirs.user_cache_path("bulkhead") / "bench"
SCRATCH = "bench_vector_index"
HELD_OUT, QUERIES, NEIGHBOURS, EF_SEARCH = 800, 200, 30, 100
BASELINE = (16, 64)


def variant(text: str) -> tuple[int, int]:
    m, ef = text.split(":")
    return int(m), int(ef)


async def timed_inserts(conn: asyncpg.Connection, table: str, vectors: list[str]) -> list[float]:
    """Milliseconds of each insert, one statement and one transaction each."""
    times = []
    for vector in vectors:
        started = time.perf_counter()
        await conn.execute(f"INSERT INTO {table} (id, embedding) VALUES (0, $1::vector)", vector)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def run(args: argparse.Namespace) -> None:
    url = os.environ.get("BULKHEAD_DATABASE_URL")
    data_dir = Path(os.environ.get("BULKHEAD_DATA_DIR", CACHE / "pg"))
    if not url:
        from mcp_server.db.embedded import start_embedded

        url = await start_embedded(data_dir)
    conn = await asyncpg.connect(url)
    try:
        await bench(conn, args)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE")
        await conn.close()
        if not os.environ.get("BULKHEAD_DATABASE_URL"):
            from mcp_server.db.embedded import stop_embedded

            await stop_embedded(data_dir)


async def bench(conn: asyncpg.Connection, args: argparse.Namespace) -> None:
    vector_schema = await conn.fetchval(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
    )
    source = await conn.fetchval("SELECT to_regclass($1)", f"{args.schema}.memories")
    if source is None:
        raise SystemExit(f"no table {args.schema}.memories: run bench/latency.py first, which fills it")
    await conn.execute(f'SET search_path = public, "{vector_schema}"')
    await conn.execute("SET maintenance_work_mem = '2GB'")
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE; CREATE SCHEMA {SCRATCH}")
    # Only the filled bank (not what retain benches added), first retained first: the held-out
    # vectors are real embeddings (`--real-vectors` of the latency bench), the rest copies too.
    await conn.execute(
        f"CREATE TABLE {SCRATCH}.ordered AS SELECT row_number() OVER (ORDER BY m.seq) AS id, m.embedding"
        f" FROM {source} AS m JOIN {args.schema}.banks AS b ON b.id = m.bank_id"
        f" WHERE b.name = 'bench' AND m.embedding IS NOT NULL"
    )
    held = [
        r["e"] for r in await conn.fetch(f"SELECT embedding::text AS e FROM {SCRATCH}.ordered WHERE id <= $1", HELD_OUT)
    ]
    queries, inserts = held[:QUERIES], held[QUERIES:]
    await conn.execute(
        f"CREATE TABLE {SCRATCH}.base AS SELECT id, embedding FROM {SCRATCH}.ordered WHERE id > $1", HELD_OUT
    )
    rows = await conn.fetchval(f"SELECT count(*) FROM {SCRATCH}.base")
    exact = [
        {
            r["id"]
            for r in await conn.fetch(
                f"SELECT id FROM {SCRATCH}.base ORDER BY embedding <=> $1::vector LIMIT {NEIGHBOURS}", q
            )
        }
        for q in queries
    ]
    load_before = os.getloadavg()
    results: dict[tuple[int, int], tuple[float, float, list[float]]] = {}
    for m, ef in [BASELINE] + [v for v in args.variants if v != BASELINE]:
        table = f"{SCRATCH}.m{m}_ef{ef}"
        await conn.execute(f"CREATE TABLE {table} AS SELECT * FROM {SCRATCH}.base")
        started = time.perf_counter()
        await conn.execute(
            f"CREATE INDEX {'m' + str(m) + '_ef' + str(ef)}_index ON {table}"
            f" USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef})"
        )
        build = time.perf_counter() - started
        await conn.execute(f"ANALYZE {table}; SET hnsw.ef_search = {EF_SEARCH}")
        found = 0
        for query, truth in zip(queries, exact, strict=True):
            ids = await conn.fetch(
                f"SELECT id FROM {table} ORDER BY embedding <=> $1::vector LIMIT {NEIGHBOURS}", query
            )
            found += len({r["id"] for r in ids} & truth)
        results[(m, ef)] = (build, found / (NEIGHBOURS * len(queries)), await timed_inserts(conn, table, inserts))
        print(f"  built and timed m={m} ef_construction={ef}", flush=True)
    await conn.execute(f"CREATE TABLE {SCRATCH}.unindexed AS SELECT * FROM {SCRATCH}.base")
    floor = await timed_inserts(conn, f"{SCRATCH}.unindexed", inserts)
    smallest = min(ef for _, ef in results)
    m, ef = BASELINE
    await conn.execute(f"ALTER INDEX {SCRATCH}.m{m}_ef{ef}_index SET (ef_construction = {smallest})")
    altered = await timed_inserts(conn, f"{SCRATCH}.m{m}_ef{ef}", inserts)

    base_insert = statistics.median(results[BASELINE][2])
    print(
        f"HNSW build settings, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores, "
        f"load average {load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after; {rows} vectors of "
        f"{args.schema}, {len(queries)} queries, {len(inserts)} inserts"
    )
    for (m, ef), (build, recall, times) in results.items():
        insert = statistics.median(times)
        print(
            f"  m={m:<3} ef_construction={ef:<4} build {build:6.1f} s   recall@{NEIGHBOURS} vs exact {recall:.3f}   "
            f"insert p50 {insert:5.2f} ms ({insert / base_insert:.2f}x the baseline)"
        )
    print(
        f"  baseline index altered to ef_construction={smallest}: insert p50 {statistics.median(altered):.2f} ms"
        f" ({statistics.median(altered) / base_insert:.2f}x)"
    )
    print(f"  no index (the floor): insert p50 {statistics.median(floor):.2f} ms")
    pairs = ",".join(f"{m}:{ef}" for m, ef in args.variants)
    print(f"command: python bench/vector_index.py --variants {pairs} --schema {args.schema}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants",
        type=lambda text: [variant(part) for part in text.split(",")],
        default=[(16, 40), (16, 32)],
        help="m:ef_construction pairs to compare with 16:64, comma-separated (default 16:40,16:32)",
    )
    parser.add_argument("--schema", default="bench_100000", help="the schema whose memories are copied")
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
