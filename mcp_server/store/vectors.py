"""A schema's embeddings as a whole: their fixed dimension, the embedder that made them, and
rewriting them all (reembed)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mcp_server.errors import Misconfigured
from mcp_server.store.records import as_vectors
from mcp_server.store.sql import SchemaNames
from mcp_server.store.sql.vectors import VectorSQL
from mcp_server.store.tenant_store import TenantStore

logger = logging.getLogger(__name__)


def _vector_sql(store: TenantStore, dimension: int = 0) -> VectorSQL:
    if store.vector_schema is None:
        raise Misconfigured("this database has no pgvector, so there are no embeddings to rewrite.")
    return VectorSQL(SchemaNames(store.schema, vector_schema=store.vector_schema, embedding_dim=dimension))


async def stored_dimension(store: TenantStore) -> int | None:
    """The dimension of the schema's embedding column, or None if it has none (no pgvector)."""
    if not store.has_vectors:
        return None
    sql = _vector_sql(store)
    async with store.transaction() as conn:
        dimension = await conn.fetchval(sql.embedding_dimension, sql.names.render("{schema}.memories"))
    return int(dimension) if dimension is not None and dimension > 0 else None


async def recorded_embedder(store: TenantStore, configured: str) -> str:
    """The embedder recorded as the maker of the schema's vectors; `configured` if none was yet,
    which is then recorded (a schema without pgvector records nothing and answers `configured`).
    """
    if not store.has_vectors:
        return configured
    sql = _vector_sql(store)
    async with store.transaction() as conn:
        recorded: str | None = await conn.fetchval(sql.recorded_embedder)
        if recorded is not None:
            return recorded
        older = await conn.fetchval(sql.any_vector)
        recorded = await conn.fetchval(sql.claim_embedder, configured)
    if recorded is None:
        async with store.transaction() as conn:
            recorded = await conn.fetchval(sql.recorded_embedder)
    elif older and recorded == configured:
        logger.warning(
            "schema %s holds vectors from before embedders were recorded; they are taken as made by %s "
            "(if another embedder made them, run `bulkhead reembed --schema %s`)",
            store.schema,
            configured,
            store.schema,
        )
    return recorded or configured


class VectorRewrite:
    """Recompute every embedding of a schema: drop the index, resize, refill in batches, reindex.

    While it runs, memories whose vector is not yet rewritten are found by full-text search only.
    `embedder` is recorded as the vectors' maker as it begins, so that servers configured with
    it serve the schema during the rewrite (and servers with the old one refuse it).
    """

    def __init__(self, store: TenantStore, dimension: int, embedder: str) -> None:
        self.sql = _vector_sql(store, dimension)
        self.store = store
        self.dimension = dimension
        self.embedder = embedder

    async def begin(self) -> int:
        """Drop the vector index and resize the column if needed; return how many memories there are."""
        stored = await stored_dimension(self.store)
        async with self.store.transaction() as conn:
            await conn.execute(self.sql.drop_vector_index)
            if stored != self.dimension:
                await conn.execute(self.sql.resize_vector_column)
            await conn.execute(self.sql.record_embedder, self.embedder)
            return int(await conn.fetchval(self.sql.count_memories))

    async def batch_after(self, seq: int, limit: int) -> list[tuple[int, str]]:
        """The next `limit` memories after `seq`, as (seq, text)."""
        async with self.store.transaction() as conn:
            rows = await conn.fetch(self.sql.memories_after, seq, limit)
        return [(row["seq"], row["text"]) for row in rows]

    async def write(self, seqs: Sequence[int], vectors: Sequence[Any]) -> None:
        """Store one batch of vectors, in its own transaction."""
        async with self.store.transaction() as conn:
            await conn.execute(self.sql.set_embeddings, list(seqs), as_vectors(vectors))

    async def finish(self) -> None:
        """Build the vector index again over the rewritten vectors."""
        async with self.store.transaction() as conn:
            await conn.execute(self.sql.raise_maintenance_memory)
            await conn.execute(self.sql.create_vector_index)
