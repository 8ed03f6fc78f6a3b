"""The vector index over half-precision copies of the vectors, and the full vectors beside it.

A schema indexed before schema/0010 gets the new index from its migration, with the dimension
of its own column (which a schema awaiting a reembed may not share with the server's embedder);
the search finds its candidates through that index and still ranks by full-precision similarity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import numpy as np
import pytest
from helpers import unique

from mcp_server.config import load_settings
from mcp_server.db.migrations import load_migrations
from mcp_server.db.pool import create_pool
from mcp_server.store import NewDocument, Provisioner, SearchRequest, StoreRegistry, TenantStore, register_vector_codec
from mcp_server.store.provisioning import vector_version_supported

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
    older = TenantStore(vector_pool, schema, vector_schema=earlier.vector_schema, embedding_dim=8)
    vectors = unit(np.random.default_rng(3).normal(size=(5, 8)))
    await older.retain("notes", NewDocument("d", [f"note {i}" for i in range(5)], None, [], {}, None), list(vectors))

    # A server whose embedder makes 384 dimensions migrates it: the index keeps the column's 8.
    current = Provisioner(vector_pool)
    await current.bootstrap()
    await current.provision(schema)
    definition = await index_definition(vector_pool, schema)
    assert "halfvec(8)" in definition and "halfvec_cosine_ops" in definition
    banks = await older.list_banks()
    assert [(bank.name, bank.memories) for bank in banks] == [("notes", 5)]


async def test_the_index_finds_the_candidates_and_the_full_vectors_score_them(vector_pool: asyncpg.Pool) -> None:
    provisioner = Provisioner(vector_pool)
    await provisioner.bootstrap()
    store = await StoreRegistry(vector_pool, provisioner).for_schema(unique("halved"))
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
    best = max(candidates, key=lambda c: c.cosine or 0.0)
    assert best.memory.text == "memory 17"
    for candidate in candidates:
        exact = float(vectors[texts.index(candidate.memory.text)] @ query)
        # Half precision would be off by ~1e-3; the column's full vectors give the model's figure.
        assert candidate.cosine == pytest.approx(exact, abs=1e-5)


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
