"""What the vector index's build settings cost on every retain, and what they buy at recall.

Retain's PostgreSQL time is mostly the HNSW insert. This bench copies the vectors of the latency
bench's 100k bank (`bench/latency.py` fills it once, in the user cache) into a scratch schema,
holds the first 800 out (real embeddings), and for each (m, ef_construction, precision) asked
for, with pgvector's defaults in full precision (16, 64, `vector`) first as the baseline of the
same run (Bulkhead's own index is that graph over half-precision copies, `16:64:half`):

- builds the index and times the build;
- searches it for 200 of the held-out vectors at recall's `ef_search` (100), times each search,
  and scores the 30 neighbours found against the exact 30 (a sequential scan over the full
  vectors): the index's recall;
- inserts the other 600 one at a time, as retains do, and times each insert; then the same
  inserts into a copy without an index, the floor.

It then changes the baseline index's ef_construction in place (`ALTER INDEX ... SET`, which
applies to later inserts only, no rebuild) to the smallest asked for, and times inserts again.

    python bench/vector_index.py [--variants 16:64:half,16:40,16:32] [--schema bench_100000]

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
BASELINE = (16, 64, "full")

Variant = tuple[int, int, str]


def variant(text: str) -> Variant:
    """`m:ef_construction`, or `m:ef_construction:half` for an index over halfvec copies."""
    m, ef, *precision = text.split(":")
    if precision not in ([], ["half"], ["full"]):
        raise argparse.ArgumentTypeError(f"{text}: the precision is half or full")
    return int(m), int(ef), precision[0] if precision else "full"


def label(m: int, ef: int, precision: str) -> str:
    return f"{m}:{ef}" + (":half" if precision == "half" else "")


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
    dimension = await conn.fetchval(f"SELECT vector_dims(embedding) FROM {SCRATCH}.base LIMIT 1")
    load_before = os.getloadavg()
    results: dict[Variant, tuple[float, float, list[float], list[float]]] = {}
    for m, ef, precision in [BASELINE] + [v for v in args.variants if v != BASELINE]:
        name = f"m{m}_ef{ef}_{precision}"
        table = f"{SCRATCH}.{name}"
        # The half-precision index is on an expression, which a search must spell the same way.
        key = f"(embedding::halfvec({dimension}))" if precision == "half" else "embedding"
        operators = "halfvec_cosine_ops" if precision == "half" else "vector_cosine_ops"
        query_type = f"halfvec({dimension})" if precision == "half" else "vector"
        await conn.execute(f"CREATE TABLE {table} AS SELECT * FROM {SCRATCH}.base")
        started = time.perf_counter()
        await conn.execute(
            f"CREATE INDEX {name}_index ON {table}"
            f" USING hnsw ({key} {operators}) WITH (m = {m}, ef_construction = {ef})"
        )
        build = time.perf_counter() - started
        await conn.execute(f"ANALYZE {table}; SET hnsw.ef_search = {EF_SEARCH}")
        found, searches = 0, []
        for query, truth in zip(queries, exact, strict=True):
            started = time.perf_counter()
            ids = await conn.fetch(
                f"SELECT id FROM {table} ORDER BY {key} <=> $1::{query_type} LIMIT {NEIGHBOURS}", query
            )
            searches.append((time.perf_counter() - started) * 1000)
            found += len({r["id"] for r in ids} & truth)
        recall = found / (NEIGHBOURS * len(queries))
        results[(m, ef, precision)] = (build, recall, searches, await timed_inserts(conn, table, inserts))
        print(f"  built and timed {label(m, ef, precision)}", flush=True)
    await conn.execute(f"CREATE TABLE {SCRATCH}.unindexed AS SELECT * FROM {SCRATCH}.base")
    floor = await timed_inserts(conn, f"{SCRATCH}.unindexed", inserts)
    smallest = min(ef for _, ef, _ in results)
    m, ef, precision = BASELINE
    baseline = f"{SCRATCH}.m{m}_ef{ef}_{precision}"
    await conn.execute(f"ALTER INDEX {baseline}_index SET (ef_construction = {smallest})")
    altered = await timed_inserts(conn, baseline, inserts)

    base_search = statistics.median(results[BASELINE][2])
    base_insert = statistics.median(results[BASELINE][3])
    print(
        f"HNSW build settings, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores, "
        f"load average {load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after; {rows} vectors of "
        f"{args.schema}, {len(queries)} queries, {len(inserts)} inserts"
    )
    for (m, ef, precision), (build, recall, searches, times) in results.items():
        search, insert = statistics.median(searches), statistics.median(times)
        print(
            f"  {label(m, ef, precision):11} build {build:6.1f} s   recall@{NEIGHBOURS} vs exact {recall:.3f}   "
            f"search p50 {search:5.2f} ms ({search / base_search:.2f}x)   "
            f"insert p50 {insert:5.2f} ms ({insert / base_insert:.2f}x the baseline)"
        )
    print(
        f"  baseline index altered to ef_construction={smallest}: insert p50 {statistics.median(altered):.2f} ms"
        f" ({statistics.median(altered) / base_insert:.2f}x)"
    )
    print(f"  no index (the floor): insert p50 {statistics.median(floor):.2f} ms")
    pairs = ",".join(label(*v) for v in args.variants)
    print(f"command: python bench/vector_index.py --variants {pairs} --schema {args.schema}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants",
        type=lambda text: [variant(part) for part in text.split(",")],
        default=[(16, 64, "half"), (16, 40, "full"), (16, 32, "full")],
        help="m:ef_construction[:half] to compare with 16:64 in full precision, comma-separated "
        "(default 16:64:half,16:40,16:32)",
    )
    parser.add_argument("--schema", default="bench_100000", help="the schema whose memories are copied")
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
