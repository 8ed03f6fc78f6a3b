"""Recall in a small bank beside a large one: the vector index against comparing every vector.

A schema's vector index holds all its banks. Searching it for a bank that is a small part of the
schema, PostgreSQL keeps the vectors of that bank only, and gives up (`hnsw.max_scan_tuples`)
before it has found enough of them. Recall therefore compares every vector of a bank of at most
`EXACT_SEARCH_MAX` memories (`store.search`). On the latency bench's schemas (`bench/latency.py`
fills them, in the user cache), this bench adds a bank of 50 memories beside the large one and,
for each schema:

- runs recall's search on that bank for questions paraphrasing its memories, alternately the
  way recall does it and through the vector index (the baseline: what recall did before), and
  prints each one's p50 and p95, how many candidates it gave (up to 30 from each leg, with
  their neighbours) and how often the paraphrased memory was among them;
- prints recall's hit rate at 10 there (the paraphrased memory among the first ten);
- times the exact comparison alone over the first n memories of the large bank, for several n:
  what a bank of n memories would cost, against which `EXACT_SEARCH_MAX` was chosen.

    python bench/small_banks.py [--schemas bench_100000,bench_1000000] [--calls 60]

Quote the medians and ratios: the machine may be shared. Not a test: CI does not run it.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import schema_benches
from schema_benches import percentile, timed_ms
from sentences import memories

SMALL_BANK = "bench-small"
SMALL_SIZE = 50
LARGE_BANK = "bench"
EXACT_SIZES = (1000, 2000, 5000, 10000, 20000)


async def one_schema(schema: str, calls: int) -> None:
    from mcp_server.config import load_settings
    from mcp_server.memory import operations
    from mcp_server.runtime import open_runtime
    from mcp_server.tenancy import TenantDirectory

    # No storage quota: the bench schemas already hold as many memories as one tenant may.
    settings = load_settings(default_schema=schema, auth_disabled=True, tenant_max_memories=0)
    directory = TenantDirectory.from_settings(settings)
    items = list(memories(SMALL_SIZE, seed=77))
    async with open_runtime(settings, directory) as runtime:
        store = await runtime.stores.for_schema(schema)
        banks = {b.name: b.memories for b in await store.list_banks()}
        if LARGE_BANK not in banks:
            raise SystemExit(f"{schema} has no bank {LARGE_BANK!r}: run bench/latency.py first")
        if banks.get(SMALL_BANK, 0) != SMALL_SIZE:
            if SMALL_BANK in banks:
                await store.forget_bank(SMALL_BANK)
            # In the vector index, small as the bank is, for the baseline that searches through it.
            store.vector_index_from = 0
            for item in items:
                await operations.retain(
                    store,
                    content=item.text,
                    bank=SMALL_BANK,
                    embedder=runtime.embedder,
                    max_content_bytes=settings.max_content_bytes,
                    limits=directory.limits_for(schema),
                )
        asked_about = (items * (calls // len(items) + 1))[:calls]
        ways = {"compared exactly (recall)": {}, "through the vector index": {"exact_max": 0}}
        times: dict[str, list[float]] = {way: [] for way in ways}
        found: dict[str, list[int]] = {way: [] for way in ways}
        held: dict[str, list[bool]] = {way: [] for way in ways}
        for item in asked_about:
            request = operations.search_request(item.question, bank=SMALL_BANK, max_results=10)
            vector = await runtime.embedder.embed_query(item.question, namespace=schema)
            for way, changes in ways.items():
                asked = dataclasses.replace(request, vector=vector, **changes)
                ms, candidates = await timed_ms(store.search(asked))
                times[way].append(ms)
                found[way].append(len(candidates))
                held[way].append(any(c.memory.text == item.text for c in candidates))
        hits = []
        for item in items:
            result = await operations.recall(store, query=item.question, bank=SMALL_BANK, embedder=runtime.embedder)
            hits.append(any(m.text == item.text for m in result.memories[:10]))
        others = sum(count for name, count in banks.items() if name != SMALL_BANK)
        print(f"{schema}: a bank of {SMALL_SIZE} memories beside {others:,} others, {calls} searches:")
        for way in ways:
            print(
                f"  {way:28} p50 {percentile(times[way], 50):8.2f} ms   p95 {percentile(times[way], 95):8.2f} ms"
                f"   candidates {statistics.mean(found[way]):4.1f}, the paraphrased memory among them"
                f" {sum(held[way])} of {calls}"
            )
        exact, through_index = times.values()
        ratio = percentile(through_index, 50) / percentile(exact, 50)
        print(f"  through the index / exactly, p50: {ratio:.1f}x")
        print(f"  recall: the paraphrased memory in the first 10 for {sum(hits)} of {len(hits)} questions")
        await exact_costs(store)


async def exact_costs(store: Any) -> None:
    """The exact comparison alone over the first n memories of the large bank."""
    schema, vectors_in = store.schema, store.vector_schema
    async with store.transaction() as conn:
        bank = await conn.fetchval(f'SELECT id FROM "{schema}".banks WHERE name = $1', LARGE_BANK)
        first = await conn.fetchval(f'SELECT min(seq) FROM "{schema}".memories WHERE bank_id = $1', bank)
        queries = [
            row[0]
            for row in await conn.fetch(
                f'SELECT embedding FROM "{schema}".memories WHERE bank_id = $1 ORDER BY seq DESC LIMIT 40', bank
            )
        ]
        statement = (
            f'SELECT m.seq FROM "{schema}".memories AS m WHERE m.bank_id = $1 AND m.seq < $2'
            f' AND m.embedding IS NOT NULL ORDER BY (m.embedding OPERATOR("{vectors_in}".<=>) $3) + 0 LIMIT 30'
        )
        line = []
        for size in EXACT_SIZES:
            times = []
            for query in queries:
                ms, _ = await timed_ms(conn.fetch(statement, bank, first + size, query))
                times.append(ms)
            line.append(f"{size:,}: {statistics.median(times[5:]):.2f} ms")
    print("  comparing every vector of a bank of n memories, p50: " + ", ".join(line))


def main() -> None:
    schema_benches.main(
        __doc__ or "",
        "small banks",
        one_schema,
        schemas=["bench_100000", "bench_1000000"],
        calls=60,
        calls_help="searches of each kind per schema",
    )


if __name__ == "__main__":
    main()
