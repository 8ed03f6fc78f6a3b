"""Recall's vector leg in a bank that is a small part of its schema: every vector compared.

The schema's vector index holds every bank, and a search through it for a small bank gives up
before it has found enough of that bank's vectors once the others number in the tens of
thousands (`bench/small_banks.py` shows it at 100k and 1M). These tests check the mechanism on
a schema small enough to build here: which branch of the statement runs, and what it finds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import numpy as np
import pytest
from helpers import unique

from mcp_server.config import load_settings
from mcp_server.db.pool import create_pool
from mcp_server.store import (
    NewDocument,
    Provisioner,
    SearchRequest,
    StoreRegistry,
    TenantStore,
    register_vector_codec,
)
from mcp_server.store.search import EXACT_SEARCH_MAX, Candidate, bound_values

pytestmark = pytest.mark.anyio

DIMENSION = 384


@pytest.fixture
async def vector_pool(pool: asyncpg.Pool, pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool as the server opens it, once the vector extension is there; of one connection, so
    that its prepared statements tell how every search was planned."""
    await Provisioner(pool).bootstrap()
    settings = load_settings(_env_file=None, database_url=pg_url, pool_min_size=1, pool_max_size=1)
    with_vectors = await create_pool(settings, on_connect=register_vector_codec)
    yield with_vectors
    await with_vectors.close()


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


async def filled_store(pool: asyncpg.Pool) -> tuple[TenantStore, np.ndarray, np.ndarray]:
    """A schema with a crowded bank of vectors all near the query, and a small bank of others.

    Returns the store, the query's vector and the small bank's vectors (in retain order).
    """
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    store = await StoreRegistry(pool, provisioner).for_schema(unique("s"))
    # Every memory in the vector index, however small its bank, so that searching through it
    # (a bank past `exact_max`) finds them there.
    store.vector_index_from = 0
    rng = np.random.default_rng(7)
    query = unit(rng.normal(size=DIMENSION))
    crowd = unit(query + 0.05 * rng.normal(size=(300, DIMENSION)))
    few = unit(rng.normal(size=(40, DIMENSION)))
    await store.retain(
        "crowd", NewDocument("crowd", [f"crowd {i}" for i in range(300)], None, [], {}, None), list(crowd)
    )
    # Every other memory of the small bank is tagged red.
    for i, vector in enumerate(few):
        tags = ["red"] if i % 2 == 0 else []
        await store.retain("few", NewDocument(f"few-{i}", [f"few {i}"], None, tags, {}, None), [vector])
    return store, query, few


def request(bank: str, **fields: Any) -> SearchRequest:
    return SearchRequest(bank=bank, ranked_query=None, per_leg=10, neighbour_window=timedelta(0), **fields)


async def seeds_and_plan(store: TenantStore, search: SearchRequest, query: np.ndarray) -> tuple[list[str], Any]:
    """The texts of the vector leg's seeds, nearest first, and the executed plan (JSON)."""
    statement = store.search_sql.hybrid
    arguments = statement.arguments(bound_values(search, [], query))
    async with store.transaction() as conn:
        # A table this small is cheaper to scan and sort than to search through its vector index:
        # with both discouraged, as on a table of the size the index is for, the branch that may
        # use the index does.
        await conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
        rows = await conn.fetch(statement.text, *arguments)
        [plan_text] = await conn.fetchrow("EXPLAIN (ANALYZE, FORMAT JSON) " + statement.text, *arguments)
    seeds = sorted((row for row in rows if row["seed"]), key=lambda row: -row["cosine"])
    return [row["text"] for row in seeds], json.loads(plan_text)


def vector_index_loops(plan: Any) -> int:
    """How many times the plan ran a scan of the vector index (0: planned, never executed)."""
    loops = 0
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Index Name") == "memories_embedding_idx":
            loops += node.get("Actual Loops", 0)
        nodes.extend(node.get("Plans", []))
    return loops


def nearest(vectors: np.ndarray, query: np.ndarray, count: int, keep: list[int] | None = None) -> list[str]:
    chosen = range(len(vectors)) if keep is None else keep
    order = sorted(chosen, key=lambda i: -float(vectors[i] @ query))
    return [f"few {i}" for i in order[:count]]


async def test_a_small_bank_is_searched_exactly_and_never_through_the_vector_index(vector_pool: asyncpg.Pool) -> None:
    store, query, few = await filled_store(vector_pool)
    found, plan = await seeds_and_plan(store, request("few"), query)
    assert found == nearest(few, query, 10)
    assert vector_index_loops(plan) == 0
    assert EXACT_SEARCH_MAX >= 1000


async def test_a_bank_past_the_exact_limit_is_searched_through_the_vector_index(vector_pool: asyncpg.Pool) -> None:
    store, query, few = await filled_store(vector_pool)
    found, plan = await seeds_and_plan(store, request("few", exact_max=39), query)
    assert vector_index_loops(plan) == 1
    # The index is approximate: most of the true nearest, none from the crowded bank.
    assert len(set(found) & set(nearest(few, query, 10))) >= 8
    assert all(text.startswith("few ") for text in found)


async def test_the_exact_search_keeps_the_filters(vector_pool: asyncpg.Pool) -> None:
    store, query, few = await filled_store(vector_pool)
    found, plan = await seeds_and_plan(store, request("few", tags=["red"]), query)
    assert found == nearest(few, query, 10, keep=list(range(0, 40, 2)))
    assert vector_index_loops(plan) == 0


async def test_in_a_larger_bank_the_few_memories_a_filter_passes_are_searched_exactly(
    vector_pool: asyncpg.Pool,
) -> None:
    store, query, few = await filled_store(vector_pool)
    red = list(range(0, 40, 2))
    found, plan = await seeds_and_plan(store, request("few", tags=["red"], exact_max=10), query)
    assert found == nearest(few, query, 10, keep=red)
    assert vector_index_loops(plan) == 0
    # More of them than `filtered_max`: through the index, which keeps the filter too.
    found, plan = await seeds_and_plan(store, request("few", tags=["red"], exact_max=10, filtered_max=19), query)
    assert vector_index_loops(plan) == 1
    assert len(set(found) & set(nearest(few, query, 10, keep=red))) >= 8
    assert all(int(text.split()[1]) % 2 == 0 for text in found)


async def search_plans(pool: asyncpg.Pool) -> tuple[int, int]:
    """How often the one connection's search statement ran a generic plan, and a custom one."""
    async with pool.acquire() as conn:
        plans = await conn.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_catalog.pg_prepared_statements"
            " WHERE pg_catalog.starts_with(statement, 'WITH') AND pg_catalog.strpos(statement, 'semantic AS') > 0"
        )
    return (plans["generic_plans"], plans["custom_plans"]) if plans is not None else (0, 0)


def seed_texts(candidates: list[Candidate], query: np.ndarray, few: np.ndarray) -> list[str]:
    """The vector leg's seeds among `candidates` of bank "few", nearest first."""
    vectors = {f"few {i}": vector for i, vector in enumerate(few)}
    texts = [c.memory.text for c in candidates if c.cosine is not None and c.memory.text in vectors]
    return sorted(texts, key=lambda text: -float(vectors[text] @ query))


async def test_a_filtered_search_is_planned_for_its_values_and_an_open_one_once(vector_pool: asyncpg.Pool) -> None:
    store, query, few = await filled_store(vector_pool)
    for _ in range(8):
        found = await store.search(dataclasses.replace(request("few", tags=["red"]), vector=query))
        assert seed_texts(found, query, few)[:10] == nearest(few, query, 10, keep=list(range(0, 40, 2)))
    assert await search_plans(vector_pool) == (0, 8)
    # Without a filter, the plan made once takes the way a plan for the values takes: every
    # vector of the small bank compared, and the vector index past the exact limit.
    for _ in range(4):
        found = await store.search(dataclasses.replace(request("few"), vector=query))
        assert seed_texts(found, query, few)[:10] == nearest(few, query, 10)
        found = await store.search(dataclasses.replace(request("few", exact_max=39), vector=query))
        assert len(set(seed_texts(found, query, few)) & set(nearest(few, query, 10))) >= 8
        assert all(c.memory.text.startswith("few ") for c in found)
    assert await search_plans(vector_pool) == (8, 8)
