"""The vector index over half-precision copies of the vectors, and the full vectors beside it.

A schema indexed before schema/0010 gets the new index from its migration, with the dimension
of its own column (which a schema awaiting a reembed may not share with the server's embedder);
the search finds its candidates through that index and still ranks by full-precision similarity.
Since schema/0011 the index holds a bank's memories only once the bank is large enough to be
searched through it; recall finds the others all the same.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import timedelta
from typing import Any

import anyio
import asyncpg
import numpy as np
import pytest
from helpers import unique

from mcp_server.config import load_settings
from mcp_server.db.migrations import load_migrations
from mcp_server.db.pool import create_pool
from mcp_server.store import NewDocument, Provisioner, SearchRequest, StoreRegistry, TenantStore, register_vector_codec
from mcp_server.store.provisioning import vector_version_supported
from mcp_server.store.records import as_vectors

pytestmark = pytest.mark.anyio


@pytest.fixture
async def vector_pool(pool: asyncpg.Pool, pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool as the server opens it, once the vector extension is there."""
    await Provisioner(pool).bootstrap()
    settings = load_settings(_env_file=None, database_url=pg_url)
    with_vectors = await create_pool(settings, on_connect=register_vector_codec)
    yield with_vectors
    await with_vectors.close()


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


async def index_definition(pool: asyncpg.Pool, schema: str) -> str:
    async with pool.acquire() as conn:
        definition = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'memories_embedding_idx'", schema
        )
    assert isinstance(definition, str)
    return definition


async def test_a_schema_indexed_before_gets_the_half_precision_index_of_its_own_dimension(
    vector_pool: asyncpg.Pool,
) -> None:
    migrations = load_migrations()
    halved = next(m for m in migrations if m.name.endswith("vector_index_half_precision"))
    # Made by an 8-dimension embedder, before the index was halved.
    earlier = Provisioner(
        vector_pool, embedding_dim=8, migrations=[m for m in migrations if m.version < halved.version]
    )
    await earlier.bootstrap()
    schema = unique("halved")
    await earlier.provision(schema)
    assert "halfvec" not in await index_definition(vector_pool, schema)
    vectors = unit(np.random.default_rng(3).normal(size=(5, 8)))
    # Written as that version wrote them (this version's retain names a column it lacks).
    async with vector_pool.acquire() as conn:
        bank = await conn.fetchval(f'INSERT INTO "{schema}".banks (name) VALUES ($1) RETURNING id', "notes")
        await conn.execute(f'INSERT INTO "{schema}".documents (bank_id, id) VALUES ($1, $2)', bank, "d")
        await conn.executemany(
            f'INSERT INTO "{schema}".memories (id, bank_id, document_id, chunk_index, text, embedding)'
            " VALUES (gen_random_uuid(), $1, 'd', $2, $3, $4)",
            [(bank, i, f"note {i}", vector) for i, vector in enumerate(vectors)],
        )
    older = TenantStore(vector_pool, schema, vector_schema=earlier.vector_schema, embedding_dim=8)

    # A server whose embedder makes 384 dimensions migrates it: the index keeps the column's 8.
    current = Provisioner(vector_pool)
    await current.bootstrap()
    await current.provision(schema)
    definition = await index_definition(vector_pool, schema)
    assert "halfvec(8)" in definition and "halfvec_cosine_ops" in definition
    assert definition.endswith("WHERE in_vector_index")
    banks = await older.list_banks()
    assert [(bank.name, bank.memories) for bank in banks] == [("notes", 5)]
    # Memories stored before stay in the index, small as their bank is.
    assert await outside_index(older, "notes") == []


async def store_with_vectors(pool: asyncpg.Pool, prefix: str) -> TenantStore:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    return await StoreRegistry(pool, provisioner).for_schema(unique(prefix))


async def outside_index(store: TenantStore, bank: str) -> list[str]:
    """The texts of the bank's memories not in the vector index, in retain order."""
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            f'SELECT m.text FROM "{store.schema}".memories AS m JOIN "{store.schema}".banks AS b ON b.id = m.bank_id'
            " WHERE b.name = $1 AND NOT m.in_vector_index ORDER BY m.seq",
            bank,
        )
    return [row["text"] for row in rows]


async def test_the_index_finds_the_candidates_and_the_full_vectors_score_them(vector_pool: asyncpg.Pool) -> None:
    store = await store_with_vectors(vector_pool, "halved")
    # Every memory joins the index at once, however small its bank.
    store.vector_index_from = 0
    assert "halfvec(384)" in await index_definition(vector_pool, store.schema)
    rng = np.random.default_rng(11)
    vectors = unit(rng.normal(size=(60, 384)))
    texts = [f"memory {i}" for i in range(60)]
    await store.retain("notes", NewDocument("d", texts, None, [], {}, None), list(vectors))
    query = unit(vectors[17] + 0.1 * rng.normal(size=384))
    # Past `exact_max`, the bank is searched through the vector index.
    request = SearchRequest(
        bank="notes", ranked_query=None, vector=query, per_leg=10, neighbour_window=timedelta(0), exact_max=10
    )
    candidates = await store.search(request)
    assert await outside_index(store, "notes") == []
    best = max(candidates, key=lambda c: c.cosine or 0.0)
    assert best.memory.text == "memory 17"
    for candidate in candidates:
        exact = float(vectors[texts.index(candidate.memory.text)] @ query)
        # Half precision would be off by ~1e-3; the column's full vectors give the model's figure.
        assert candidate.cosine == pytest.approx(exact, abs=1e-5)


async def test_a_small_banks_memories_stay_out_of_the_index_and_recall_still_finds_them(
    vector_pool: asyncpg.Pool,
) -> None:
    store = await store_with_vectors(vector_pool, "small")
    rng = np.random.default_rng(12)
    vectors = unit(rng.normal(size=(40, 384)))
    texts = [f"memory {i}" for i in range(40)]
    await store.retain("notes", NewDocument("d", texts, None, [], {}, None), list(vectors))
    assert await outside_index(store, "notes") == texts
    query = unit(vectors[23] + 0.1 * rng.normal(size=384))
    for exact_max in (5000, 10):
        # Searched exactly as a small bank; then as a large one, whose memories outside the index
        # are compared beside it.
        request = SearchRequest(
            bank="notes", ranked_query=None, vector=query, per_leg=5, neighbour_window=timedelta(0), exact_max=exact_max
        )
        found = await store.search(request)
        assert max(found, key=lambda c: c.cosine or 0.0).memory.text == "memory 23"
        nearest = sorted(range(40), key=lambda i: -float(vectors[i] @ query))[:5]
        assert {c.memory.text for c in found} == {texts[i] for i in nearest}


async def test_a_growing_bank_joins_the_index_and_brings_its_older_memories_with_it(
    vector_pool: asyncpg.Pool,
) -> None:
    store = await store_with_vectors(vector_pool, "growing")
    store.vector_index_from = 4
    vectors = unit(np.random.default_rng(13).normal(size=(12, 384)))

    async def retain(document: str, first: int, count: int) -> None:
        texts = [f"memory {i}" for i in range(first, first + count)]
        await store.retain("notes", NewDocument(document, texts, None, [], {}, None), list(vectors[first:][:count]))

    for i in range(3):
        await retain(f"d{i}", i, 1)
    assert await outside_index(store, "notes") == ["memory 0", "memory 1", "memory 2"]
    # The fourth memory takes the bank to 4: it joins, and brings the oldest one in.
    await retain("d3", 3, 1)
    assert await outside_index(store, "notes") == ["memory 1", "memory 2"]
    # A document brings as many as it adds.
    await retain("d4", 4, 2)
    assert await outside_index(store, "notes") == []
    # Replacing a document writes its memories again, in the index.
    await retain("d4", 6, 3)
    assert await outside_index(store, "notes") == []
    await retain("d5", 9, 1)
    assert [bank.memories for bank in await store.list_banks()] == [8]


async def store_with_outside_memories(pool: asyncpg.Pool, prefix: str, count: int) -> TenantStore:
    """A store whose bank `notes` holds `count` memories outside the index (documents `old i`), and
    which puts every memory retained from now on in it."""
    store = await store_with_vectors(pool, prefix)
    vectors = unit(np.random.default_rng(14).normal(size=(count, 384)))
    for i, vector in enumerate(vectors):
        await store.retain("notes", NewDocument(f"old {i}", [f"old {i}"], None, [], {}, None), [vector])
    assert len(await outside_index(store, "notes")) == count
    store.vector_index_from = 0
    return store


def new_memory(name: str, seed: int) -> tuple[NewDocument, list[np.ndarray]]:
    vector = unit(np.random.default_rng(seed).normal(size=384))
    return NewDocument(name, [name], None, [], {}, None), [vector]


async def test_concurrent_retains_each_bring_a_different_older_memory_in(vector_pool: asyncpg.Pool) -> None:
    store = await store_with_outside_memories(vector_pool, "joining", 24)
    async with anyio.create_task_group() as group:
        for i in range(24):
            group.start_soon(store.retain, "notes", *new_memory(f"new {i}", i))
    # Each took the oldest one no other retain held: together, all of them.
    assert await outside_index(store, "notes") == []
    assert [bank.memories for bank in await store.list_banks()] == [48]


async def test_a_retain_passes_over_an_older_memory_another_transaction_holds(
    vector_pool: asyncpg.Pool, pg_url: str
) -> None:
    store = await store_with_outside_memories(vector_pool, "held", 3)
    other = await asyncpg.connect(pg_url)
    try:
        async with other.transaction():
            await other.execute(f'SELECT 1 FROM "{store.schema}".memories WHERE text = $1 FOR UPDATE', "old 0")
            # Bounded only so that a wait fails the test instead of hanging it.
            with anyio.fail_after(30):
                await store.retain("notes", *new_memory("new", 1))
            assert await outside_index(store, "notes") == ["old 0", "old 2"]
    finally:
        await other.close()


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


async def test_bringing_a_memory_in_reads_only_that_memory(vector_pool: asyncpg.Pool) -> None:
    store = await store_with_outside_memories(vector_pool, "probe", 60)
    _, vectors = new_memory("new", 1)
    async with store.transaction() as conn:
        bank_id = await store.bank_id(conn, "notes")
        values = (bank_id, "new", [uuid.uuid4()], ["new"], None, [], {}, None, as_vectors(vectors), 0)
        plan = await conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + store.memory_sql.upsert_new_document_embedded, *values
        )
    nodes = list(plan_nodes(json.loads(plan)[0]["Plan"]))
    update = next(node for node in nodes if node["Node Type"] == "ModifyTable" and node["Operation"] == "Update")
    # A plan joining the picked memories to the bank read all 60 of them to update one.
    assert all(node["Actual Rows"] <= 1 for node in plan_nodes(update))
    assert await outside_index(store, "notes") == [f"old {i}" for i in range(1, 60)]


async def test_bringing_memories_in_never_deadlocks_with_replaces_and_forgets(vector_pool: asyncpg.Pool) -> None:
    store = await store_with_outside_memories(vector_pool, "mixed", 40)
    failures: list[Exception] = []

    async def attempt(work: Awaitable[object]) -> None:
        try:
            await work
        except Exception as exc:  # every failure is what the test counts
            failures.append(exc)

    async with anyio.create_task_group() as group:
        for i in range(40):
            if i % 4 == 0:
                group.start_soon(attempt, store.forget_document("notes", f"old {i}"))
            elif i % 4 == 1:
                # A replace of an old document: its memory goes in again, in the index.
                group.start_soon(attempt, store.retain("notes", *new_memory(f"old {i}", 100 + i)))
            else:
                group.start_soon(attempt, store.retain("notes", *new_memory(f"new {i}", 200 + i)))
    assert failures == []
    async with store.pool.acquire() as conn:
        rows = await conn.fetchval(f'SELECT count(*) FROM "{store.schema}".memories')
    assert rows == 40 - 10 + 20 and [bank.memories for bank in await store.list_banks()] == [rows]


def test_a_pgvector_without_halfvec_is_refused_by_its_version() -> None:
    assert not vector_version_supported("0.5.1")
    assert not vector_version_supported("0.6.2")
    assert vector_version_supported("0.7.0")
    assert vector_version_supported("0.8.6")
    assert vector_version_supported("1.0")


async def test_start_up_accepts_the_pgvector_it_installs(pool: asyncpg.Pool) -> None:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    assert provisioner.has_vector
    async with pool.acquire() as conn:
        version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    assert vector_version_supported(version)
