"""`TenantStore`: every read and write of one tenant schema, each call one transaction."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import asyncpg
from pgvector import Vector

from mcp_server.store.templates import SchemaStatements


@dataclass(frozen=True, slots=True)
class StoredMemory:
    """A memory as read back from the store."""

    id: uuid.UUID
    seq: int
    text: str
    context: str | None
    tags: list[str]
    metadata: dict[str, Any]
    occurred_at: datetime | None
    retained_at: datetime
    document_id: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A memory recall may return, with the raw signals fusion ranks it by.

    `lexical` is the full-text rank (None: no query word matched); `cosine` the similarity of its
    vector to the query's (None: no vector). `prev_*` describe the memory retained just before
    it: its similarity to the query and to this memory. `prev_seq`/`next_seq` name the neighbours
    retained within the neighbour window, whether or not they are candidates themselves.
    """

    memory: StoredMemory
    lexical: float | None
    cosine: float | None
    prev_seq: int | None
    prev_cosine: float | None
    prev_similarity: float | None
    next_seq: int | None


_MEMORY_FIELDS = ("id", "seq", "text", "context", "tags", "metadata", "occurred_at", "retained_at", "document_id")


@dataclass(frozen=True, slots=True)
class BankSummary:
    """One bank and what it holds."""

    name: str
    memories: int
    documents: int
    last_retained_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document to retain: its chunks and the fields every chunk's memory shares."""

    document_id: str
    chunks: Sequence[str]
    context: str | None
    tags: Sequence[str]
    metadata: dict[str, Any]
    occurred_at: datetime | None


def _candidates(rows: Sequence[asyncpg.Record], window: timedelta) -> list[Candidate]:
    """Pool rows as candidates, linked to the rows retained just before and after them.

    The rows are ordered by seq and hold every pool row's true predecessor (see the template),
    so a row's predecessor is the row before it; it counts when retained within `window`.
    """
    linked = {
        row["seq"]: before for before, row in pairwise(rows) if row["retained_at"] - before["retained_at"] <= window
    }
    pool: set[int] = set()
    for index, row in enumerate(rows):
        if row["seed"]:
            pool.add(row["seq"])
            if row["seq"] in linked:
                pool.add(rows[index - 1]["seq"])
            if index + 1 < len(rows) and rows[index + 1]["seq"] in linked:
                pool.add(rows[index + 1]["seq"])
    prev = {seq: before for seq, before in linked.items() if seq in pool}
    following = {before["seq"]: seq for seq, before in prev.items()}
    candidates = []
    for row in rows:
        seq = row["seq"]
        if seq not in pool or not row["eligible"]:
            continue
        before = prev.get(seq)
        candidates.append(
            Candidate(
                memory=StoredMemory(**{name: row[name] for name in _MEMORY_FIELDS}),
                lexical=row["lexical"],
                cosine=row["cosine"],
                prev_seq=before["seq"] if before is not None else None,
                prev_cosine=before["cosine"] if before is not None else None,
                prev_similarity=row["prev_similarity"] if before is not None else None,
                next_seq=following.get(seq),
            )
        )
    return candidates


def as_vectors(vectors: Sequence[Any]) -> list[Vector]:
    """Wrap vectors for a `vector[]` parameter (a bare array would read as a 2-D array)."""
    return [v if isinstance(v, Vector) else Vector(v) for v in vectors]


# Seconds a schema's common words are kept: they drift slowly, with the statistics behind them.
COMMON_WORDS_TTL = 300.0


class UnknownBankError(LookupError):
    """The bank does not exist in this tenant's schema."""


class TenantStore:
    """The data layer of one schema. Statements are rendered once, at construction.

    `vector_schema` is where pgvector lives, or None when the database has no pgvector: then the
    schema has no embedding column and every search is lexical.
    """

    def __init__(self, pool: asyncpg.Pool, schema: str, *, vector_schema: str | None = None) -> None:
        self.pool = pool
        self.schema = schema
        self.vector_schema = vector_schema
        self.sql = SchemaStatements.for_schema(schema, **({"vector_schema": vector_schema} if vector_schema else {}))
        self._common_words: dict[int, tuple[float, frozenset[str]]] = {}

    @property
    def has_vectors(self) -> bool:
        """Whether memories here carry embeddings (pgvector is installed)."""
        return self.vector_schema is not None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """The one place a tenant transaction begins: as the schema's tenant role.

        `SET LOCAL ROLE` lasts until the transaction ends, so PostgreSQL refuses any statement in
        it that names a table of another tenant, whatever the code above does.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self.sql.set_role)
            yield conn

    async def _bank_id(self, conn: asyncpg.Connection, bank: str) -> int:
        bank_id = await conn.fetchval(self.sql.bank_id, bank)
        if bank_id is None:
            raise UnknownBankError(bank)
        return bank_id

    async def retain(self, bank: str, document: NewDocument, vectors: Sequence[Any] | None = None) -> list[uuid.UUID]:
        """Create the bank if needed and replace the document's memories with `document.chunks`.

        `vectors`, one per chunk, are stored as the chunks' embeddings when the schema has vectors.
        """
        ids = [uuid.uuid4() for _ in document.chunks]
        embedded = vectors is not None and self.has_vectors
        async with self.transaction() as conn:
            bank_id = await conn.fetchval(self.sql.ensure_bank, bank)
            if bank_id is None:
                # A concurrent retain created the bank: our insert waited for it to commit and did
                # nothing, and this statement's snapshot predates that commit. A new one sees it.
                bank_id = await self._bank_id(conn, bank)
            # The upsert locks the document row, so concurrent re-retains of one id serialise.
            await conn.execute(self.sql.upsert_document, bank_id, document.document_id)
            await conn.execute(self.sql.delete_document_memories, bank_id, document.document_id)
            await conn.execute(
                self.sql.insert_memories_embedded if embedded else self.sql.insert_memories,
                bank_id,
                document.document_id,
                ids,
                list(document.chunks),
                document.context,
                list(document.tags),
                document.metadata,
                document.occurred_at,
                *([as_vectors(vectors)] if embedded else []),  # type: ignore[arg-type]
            )
        return ids

    async def search(
        self,
        bank: str,
        *,
        tsquery: str | None,
        vector: Any | None,
        tags: Sequence[str] | None,
        since: datetime | None,
        until: datetime | None,
        per_leg: int,
        neighbour_window: timedelta,
        words: str | None = None,
        common_words: Sequence[str] = (),
    ) -> list[Candidate]:
        """Recall's candidates: up to `per_leg` best by full-text rank and by vector, plus neighbours.

        With `words` (the query's words) given, full-text search picks candidates by the ones that
        are not `common_words` (see the template).
        """
        hybrid = vector is not None and self.has_vectors
        async with self.transaction() as conn:
            bank_id = await self._bank_id(conn, bank)
            rows = await conn.fetch(
                self.sql.search_hybrid if hybrid else self.sql.search_lexical,
                bank_id,
                tsquery,
                vector if hybrid else None,
                list(tags) if tags else None,
                since,
                until,
                per_leg,
                words,
                list(common_words),
            )
        return _candidates(rows, neighbour_window)

    async def common_words(self, rows: int) -> frozenset[str]:
        """Lexemes in more than `rows` memories of the schema; read at most every few minutes."""
        now = time.monotonic()
        cached = self._common_words.get(rows)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.transaction() as conn:
            found = frozenset(r["elem"] for r in await conn.fetch(self.sql.common_words, self.schema, rows))
        self._common_words[rows] = (now + COMMON_WORDS_TTL, found)
        return found

    async def ensure_bank_exists(self, bank: str) -> None:
        """Raise `UnknownBankError` unless the bank exists."""
        async with self.transaction() as conn:
            await self._bank_id(conn, bank)

    async def forget_memories(self, bank: str, memory_ids: Sequence[uuid.UUID]) -> int:
        """Delete these memories of the bank (ids elsewhere are ignored); returns how many went."""
        async with self.transaction() as conn:
            bank_id = await self._bank_id(conn, bank)
            rows = await conn.fetch(self.sql.delete_memories, bank_id, list(memory_ids))
            documents = sorted({row["document_id"] for row in rows})
            if documents:
                await conn.execute(self.sql.delete_empty_documents, bank_id, documents)
        return len(rows)

    async def forget_document(self, bank: str, document_id: str) -> int:
        """Delete a document and all its memories; returns how many memories went."""
        async with self.transaction() as conn:
            bank_id = await self._bank_id(conn, bank)
            status = await conn.execute(self.sql.delete_document_memories, bank_id, document_id)
            await conn.execute(self.sql.delete_document, bank_id, document_id)
        return int(status.rsplit(" ", 1)[-1])

    async def list_banks(self) -> list[BankSummary]:
        """Every bank of the tenant, by name."""
        async with self.transaction() as conn:
            rows = await conn.fetch(self.sql.list_banks)
        return [BankSummary(**dict(row)) for row in rows]
