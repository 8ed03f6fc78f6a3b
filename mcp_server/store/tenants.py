"""Tenant schemas as wholes, for operators: list them, read a snapshot out, write banks in, drop one.

Reading streams rows through server-side cursors (`DECLARE`/`FETCH`, a batch of rows at a time)
inside one read-only, repeatable-read tenant transaction, so memory use stays flat however large the schema and every row comes from one
state. Writing takes one transaction per bank: a bank is imported completely or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mcp_server.db.pool import Connection, connection_failures_as_unavailable
from mcp_server.errors import InvalidInput, Misconfigured, NotFound, Unavailable
from mcp_server.store.records import BankSummary
from mcp_server.store.sql import EXTENSION_SCHEMA, SchemaNames
from mcp_server.store.sql import catalog as sql
from mcp_server.store.sql.tenants import TenantSQL
from mcp_server.store.tenant_store import CHANGED_ELSEWHERE, TenantStore
from mcp_server.tenancy import tenant_role_name


@dataclass(frozen=True, slots=True)
class SchemaSize:
    """A schema that holds Bulkhead's tables, and the bytes they take."""

    schema: str
    bytes: int


@dataclass(frozen=True, slots=True)
class ExportedBank:
    """A bank as an export starts it: its name, when it was made, and how much follows."""

    id: int
    name: str
    created_at: datetime
    documents: int
    memories: int


async def bulkhead_schemas(pool: asyncpg.Pool) -> list[SchemaSize]:
    """Every schema of the database that holds Bulkhead's tables, by name."""
    with connection_failures_as_unavailable():
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(sql.TRANSACTION_SETTINGS)
            rows = await conn.fetch(sql.BULKHEAD_SCHEMAS)
    return [SchemaSize(row["schema"], int(row["bytes"])) for row in rows]


async def catalog_size(pool: asyncpg.Pool) -> tuple[int, int]:
    """How many relations the database's catalog lists, and the bytes of its own tables."""
    with connection_failures_as_unavailable():
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(sql.TRANSACTION_SETTINGS)
            row = await conn.fetchrow(sql.CATALOG_SIZE)
    assert row is not None
    return int(row["relations"]), int(row["bytes"])


def _tenant_sql(store: TenantStore) -> TenantSQL:
    return TenantSQL(SchemaNames(store.schema, vector_schema=store.vector_schema or EXTENSION_SCHEMA))


class SchemaReader:
    """One consistent read of a schema's banks, documents and memories, row by row."""

    def __init__(self, store: TenantStore, conn: Connection) -> None:
        self.store = store
        self.conn = conn
        self.sql = _tenant_sql(store)

    async def banks(self, bank: str | None = None) -> list[ExportedBank]:
        """The banks (or the one named), by name, with their counts."""
        rows = await self.conn.fetch(self.sql.export_banks, bank)
        return [ExportedBank(**dict(row)) for row in rows]

    async def documents(self, bank: ExportedBank) -> AsyncIterator[asyncpg.Record]:
        """The bank's documents, by id."""
        async for row in self._cursor(
            self.sql.declare_documents, self.sql.fetch_documents, self.sql.close_documents, bank
        ):
            yield row

    async def memories(self, bank: ExportedBank, *, vectors: bool) -> AsyncIterator[asyncpg.Record]:
        """The bank's memories in retained order; with `vectors`, each with its `embedding` (or None)."""
        sql = self.sql
        if vectors and self.store.has_vectors:
            statements = (sql.declare_memories_embedded, sql.fetch_memories_embedded, sql.close_memories_embedded)
        else:
            statements = (sql.declare_memories, sql.fetch_memories, sql.close_memories)
        async for row in self._cursor(*statements, bank):
            yield row

    async def _cursor(self, declare: str, fetch: str, close: str, bank: ExportedBank) -> AsyncIterator[asyncpg.Record]:
        await self.conn.execute(declare, bank.id)
        while rows := await self.conn.fetch(fetch):
            for row in rows:
                yield row
        await self.conn.execute(close)


async def read_schema(store: TenantStore, stack: AsyncExitStack) -> SchemaReader:
    """A reader over one snapshot of `store`'s schema, open until `stack` closes."""
    conn = await stack.enter_async_context(store.transaction(snapshot=True))
    return SchemaReader(store, conn)


class BankWriter:
    """Writes one bank inside one transaction: documents first, then memories in order.

    Memories carry `embedding` (a list of floats) or None; `embedded` says whether the schema's
    vector column is written at all.
    """

    def __init__(self, store: TenantStore, conn: Connection, bank_id: int) -> None:
        self.store = store
        self.conn = conn
        self.bank_id = bank_id
        self.sql = _tenant_sql(store)

    async def add_documents(self, documents: Sequence[dict[str, Any]]) -> None:
        """Documents as {"id", "retained_at"}, JSON-ready (the jsonb codec encodes them)."""
        if documents:
            await self.conn.execute(self.sql.import_documents, self.bank_id, list(documents))

    async def add_memories(self, memories: Sequence[dict[str, Any]]) -> None:
        """Memories as their exported fields, JSON-ready, each with `embedding` (a list of floats, or None)."""
        if not memories:
            return
        statement = self.sql.import_memories_embedded if self.store.has_vectors else self.sql.import_memories
        try:
            await self.conn.execute(statement, self.bank_id, list(memories))
        except asyncpg.UniqueViolationError:
            raise InvalidInput(
                f"a memory id of this import already exists in schema {self.store.schema} (in another bank); "
                "import into a fresh schema, or drop the bank that holds it"
            ) from None
        except asyncpg.ForeignKeyViolationError:
            raise InvalidInput("a memory names a document that no document line of its bank declares") from None


async def open_bank(
    store: TenantStore, stack: AsyncExitStack, name: str, created_at: datetime, *, replace: bool
) -> BankWriter:
    """Begin writing bank `name`: a transaction open until `stack` closes (commit) or fails (rollback).

    A bank that already has memories is refused unless `replace`, which deletes it first.
    """
    statements = _tenant_sql(store)
    conn = await stack.enter_async_context(store.transaction())
    held = int(await conn.fetchval(statements.bank_memory_count, name))
    if held and not replace:
        raise InvalidInput(
            f"bank {name!r} of schema {store.schema} already holds {held} memories; nothing was imported into it "
            "(pass --replace to replace it)"
        )
    await conn.execute(statements.delete_bank, name)
    bank_id = int(await conn.fetchval(statements.create_bank, name, created_at))
    return BankWriter(store, conn, bank_id)


async def analyze(store: TenantStore) -> None:
    """Refresh the planner's statistics of the schema's memories (recall's common words read them)."""
    async with store.transaction() as conn:
        await conn.execute(_tenant_sql(store).analyze_memories)


async def drop_schema(pool: asyncpg.Pool, schema: str, *, protected: Sequence[str]) -> None:
    """Drop a Bulkhead schema with everything in it, and its tenant role.

    Refuses a schema in `protected` (the default schema), one that holds an extension, and one
    that is not Bulkhead's. Runs under the schema's advisory lock, so no process provisions it
    meanwhile; servers that still serve it notice on their next call and provision it afresh.
    """
    if schema in protected:
        raise InvalidInput(f"schema {schema} is the default schema, which is never dropped")
    names = SchemaNames(schema)
    statements = TenantSQL(names)
    store = TenantStore(pool, schema)
    with connection_failures_as_unavailable():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(sql.TRANSACTION_SETTINGS)
            await conn.execute(sql.ADVISORY_XACT_LOCK, f"bulkhead:schema:{schema}")
            extensions = [row["extname"] for row in await conn.fetch(sql.SCHEMA_EXTENSIONS, schema)]
            if extensions:
                raise InvalidInput(f"schema {schema} holds extension {', '.join(extensions)}, so it is not dropped")
            if schema not in {found["schema"] for found in await conn.fetch(sql.BULKHEAD_SCHEMAS)}:
                raise NotFound(f"there is no Bulkhead schema {schema} in this database")
            try:
                # As the tenant role, which owns the schema and all in it; then as the login again.
                await conn.execute(store.set_role)
                await conn.execute(statements.drop_schema)
                await conn.execute(statements.reset_role)
                await conn.execute(statements.drop_role)
            except (asyncpg.InsufficientPrivilegeError, asyncpg.DependentObjectsStillExistError) as exc:
                raise Misconfigured(
                    f"schema {schema} was not dropped: the database refused it",
                    detail=f"PostgreSQL said: {exc}; role {tenant_role_name(schema)} must be droppable by the login "
                    "(CREATEROLE) and own nothing outside the schema",
                ) from None


@dataclass(frozen=True, slots=True)
class SchemaSummary:
    """A Bulkhead schema for `tenants list`: its size, and its banks (None: its role is not ours)."""

    schema: str
    bytes: int
    banks: list[BankSummary] | None


async def summaries(pool: asyncpg.Pool, vector_schema: str | None) -> list[SchemaSummary]:
    """Every Bulkhead schema with its banks, read as each schema's tenant role."""
    found = []
    for size in await bulkhead_schemas(pool):
        store = TenantStore(pool, size.schema, vector_schema=vector_schema)
        try:
            banks: list[BankSummary] | None = await store.list_banks()
        except asyncpg.InsufficientPrivilegeError:
            banks = None
        except Unavailable as exc:
            if exc.message != CHANGED_ELSEWHERE:  # not a missing tenant role (a schema of an old version)
                raise
            banks = None
        found.append(SchemaSummary(size.schema, size.bytes, banks))
    return found
