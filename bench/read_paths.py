"""Two choices of the read path, each against its baseline in the same run, in the store.

- **Recall's search planned once.** A search with no filter runs a plan made once per connection
  (`GENERIC_PLANS` in `store.sql.catalog`), where a filtered one is planned for its values every
  time. The bench runs the unfiltered search both ways, alternately, on the latency bench's banks
  (`bench/latency.py` fills them, in the user cache), for questions paraphrasing their memories,
  and prints each way's p50 and p95 and how many searches found the same candidates both ways.
- **A read's COMMIT after the answer.** `list_banks` (a read-only transaction, committed by
  `LateCommits` once the caller has its answer), alternately with the same statement in a
  transaction whose COMMIT is awaited, as every transaction was before.

    python bench/read_paths.py [--schemas bench_10000,bench_100000,bench_1000000] [--calls 200]

Quote the medians and ratios: the machine may be shared. Not a test: CI does not run it.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import schema_benches
from schema_benches import percentile, timed_ms
from sentences import memories

BANK = "bench"
WARM_UP = 10


def line(name: str, values: list[float]) -> str:
    return f"  {name:44} p50 {percentile(values, 50):7.2f} ms   p95 {percentile(values, 95):7.2f} ms"


async def one_schema(schema: str, calls: int) -> None:
    from mcp_server.config import load_settings
    from mcp_server.memory import operations
    from mcp_server.runtime import open_runtime
    from mcp_server.tenancy import TenantDirectory

    settings = load_settings(default_schema=schema, auth_disabled=True, tenant_calls_per_second=0)
    async with open_runtime(settings, TenantDirectory.from_settings(settings)) as runtime:
        store = await runtime.stores.for_schema(schema)
        if BANK not in {b.name for b in await store.list_banks()}:
            raise SystemExit(f"{schema} has no bank {BANK!r}: run bench/latency.py first")
        embedder = runtime.embedder
        assert embedder is not None
        questions = [item.question for item in memories(calls + WARM_UP, seed=83)]
        ways = {"planned once (recall, no filter)": "generic", "planned for its values (before)": "custom"}
        times: dict[str, list[float]] = {way: [] for way in ways}
        same = 0
        for number, question in enumerate(questions):
            request = operations.search_request(question, bank=BANK, max_results=10)
            asked = dataclasses.replace(request, vector=await embedder.embed_query(question, namespace=schema))
            order = list(ways.items()) if number % 2 else list(reversed(ways.items()))
            found = {}
            for way, plans in order:
                ms, candidates = await timed_ms(store.search(asked, plans=plans))
                found[way] = {c.memory.seq for c in candidates}
                if number >= WARM_UP:
                    times[way].append(ms)
            same += number >= WARM_UP and len({frozenset(seqs) for seqs in found.values()}) == 1

        commits = {"COMMIT after the answer (list_banks)": [], "COMMIT awaited (before)": []}
        for number in range(calls + WARM_UP):
            late, awaited = commits.values()
            ms_late, _ = await timed_ms(store.list_banks())
            ms_awaited, _ = await timed_ms(_list_banks_awaited(store))
            if number >= WARM_UP:
                late.append(ms_late)
                awaited.append(ms_awaited)
        await store.late_commits.settle()

    print(f"{schema}: recall's search without a filter, {calls} questions, alternately")
    for way, values in times.items():
        print(line(way, values))
    once, each = times.values()
    print(
        f"  planned once / for its values, p50: {percentile(once, 50) / percentile(each, 50):.2f}x;"
        f" the same candidates both ways for {same} of {calls}"
    )
    print(f"{schema}: list_banks in the store, {calls} calls each, alternately")
    for name, values in commits.items():
        print(line(name, values))
    late, awaited = commits.values()
    print(f"  after the answer / awaited, p50: {percentile(late, 50) / percentile(awaited, 50):.2f}x")


async def _list_banks_awaited(store: Any) -> list[Any]:
    """`list_banks` as it ran before: a read-write transaction whose COMMIT is awaited."""
    async with store.transaction() as conn:
        return list(await conn.fetch(store.memory_sql.list_banks))


def main() -> None:
    schema_benches.main(
        __doc__ or "",
        "read paths",
        one_schema,
        schemas=["bench_10000", "bench_100000", "bench_1000000"],
        calls=200,
        calls_help="timed calls of each kind per schema",
    )


if __name__ == "__main__":
    main()
