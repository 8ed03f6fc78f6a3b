"""`TenantStore`: every read and write of one tenant schema, each call one transaction."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mcp_server.store.templates import SchemaStatements


@dataclass(frozen=True, slots=True)
class StoredMemory:
    """A memory as read back from the store, with the rank the query gave it."""

    id: uuid.UUID
    text: str
    context: str | None
    tags: list[str]
    metadata: dict[str, Any]
    occurred_at: datetime | None
    retained_at: datetime
    document_id: str
    rank: float


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


class UnknownBankError(LookupError):
    """The bank does not exist in this tenant's schema."""


class TenantStore:
    """The data layer of one schema. Statements are rendered once, at construction."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self.sql = SchemaStatements.for_schema(schema)

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

    async def retain(self, bank: str, document: NewDocument) -> list[uuid.UUID]:
        """Create the bank if needed and replace the document's memories with `document.chunks`."""
        ids = [uuid.uuid4() for _ in document.chunks]
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
                self.sql.insert_memories,
                bank_id,
                document.document_id,
                ids,
                list(document.chunks),
                document.context,
                list(document.tags),
                document.metadata,
                document.occurred_at,
            )
        return ids

    async def search_lexical(
        self,
        bank: str,
        tsquery: str,
        *,
        tags: Sequence[str] | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[StoredMemory]:
        """Memories matching a `to_tsquery` expression, best full-text rank first."""
        async with self.transaction() as conn:
            bank_id = await self._bank_id(conn, bank)
            rows = await conn.fetch(
                self.sql.search_lexical,
                bank_id,
                tsquery,
                list(tags) if tags else None,
                since,
                until,
                limit,
            )
        return [StoredMemory(**dict(row)) for row in rows]

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
