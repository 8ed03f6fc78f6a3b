"""The dashboard's reads and the whole-bank delete, inside one tenant's transactions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from mcp_server.store.records import UnknownBank
from mcp_server.store.search import StoredMemory, stored_memory
from mcp_server.store.tenant_store import TenantStore

PageOrder = Literal["retained", "occurred"]


@dataclass(frozen=True, slots=True)
class BankStats:
    """A bank's totals, counted in SQL. `bytes` (of text and context) is None where not counted."""

    name: str
    memories: int
    documents: int
    last_retained_at: datetime | None
    bytes: int | None


@dataclass(frozen=True, slots=True)
class PageQuery:
    """One page of a bank's memories: its filters, its order, and where it starts.

    `after_seq` (and, by time, `after_when`) name the last memory of the previous page, as its
    seq and its occurred_at (else retained_at); None for the first page.
    """

    bank: str
    order: PageOrder = "retained"
    text: str | None = None
    tags: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int | None = None
    after_when: datetime | None = None
    rows: int = 50


@dataclass(frozen=True, slots=True)
class MemoryDetail:
    """Every field of one memory."""

    memory: StoredMemory
    chunk_index: int


async def bank_stats(store: TenantStore) -> list[BankStats]:
    """Every bank of the tenant with its totals, by name."""
    async with store.transaction(read_only=True) as conn:
        rows = await conn.fetch(store.browse_sql.bank_stats)
    return [BankStats(**dict(row)) for row in rows]


async def one_bank_stats(store: TenantStore, bank: str) -> BankStats:
    """One bank's counts (not its bytes, which cost a read of every row); `UnknownBank` if there is no such bank."""
    async with store.transaction(read_only=True) as conn:
        row = await conn.fetchrow(store.browse_sql.one_bank_stats, bank)
    if row is None:
        raise UnknownBank(bank)
    return BankStats(**dict(row))


async def check_bank(store: TenantStore, bank: str) -> None:
    """Raise `UnknownBank` unless the tenant has this bank (one indexed row)."""
    async with store.transaction(read_only=True) as conn:
        await store.bank_id(conn, bank)


async def page(store: TenantStore, query: PageQuery) -> list[StoredMemory]:
    """One page of the bank's memories, newest first in the order asked for."""
    values: dict[str, Any] = {
        "text": query.text,
        "tags": list(query.tags) or None,
        "since": query.since,
        "until": query.until,
        "after_seq": query.after_seq,
        "after_when": query.after_when,
        "page_rows": query.rows,
    }
    sql = store.browse_sql
    statement = sql.by_occurred if query.order == "occurred" else sql.by_retained
    if query.order != "occurred":
        del values["after_when"]
    async with store.transaction(read_only=True) as conn:
        values["bank_id"] = await store.bank_id(conn, query.bank)
        rows = await conn.fetch(statement.text, *statement.arguments(values))
    return [stored_memory(row) for row in rows]


async def memory(store: TenantStore, bank: str, memory_id: uuid.UUID) -> MemoryDetail | None:
    """One memory of the bank by id, or None (whether it is elsewhere or nowhere)."""
    async with store.transaction(read_only=True) as conn:
        row = await conn.fetchrow(store.browse_sql.memory, await store.bank_id(conn, bank), memory_id)
    return MemoryDetail(stored_memory(row), row["chunk_index"]) if row is not None else None


async def memories(store: TenantStore, bank: str, memory_ids: Sequence[uuid.UUID]) -> list[StoredMemory]:
    """The memories of the bank among `memory_ids`, newest first; ids elsewhere are left out."""
    async with store.transaction(read_only=True) as conn:
        rows = await conn.fetch(store.browse_sql.memories_by_ids, await store.bank_id(conn, bank), list(memory_ids))
    return [stored_memory(row) for row in rows]


async def document_size(store: TenantStore, bank: str, document_id: str) -> int:
    """How many memories the bank's document holds (0: no such document here)."""
    async with store.transaction(read_only=True) as conn:
        count = await conn.fetchval(store.browse_sql.document_memories, await store.bank_id(conn, bank), document_id)
    return int(count)


async def export(store: TenantStore, bank: str, *, batch: int = 1000) -> AsyncIterator[MemoryDetail]:
    """Every memory of the bank in retained order, read a batch per transaction."""
    after = 0
    while True:
        async with store.transaction(read_only=True) as conn:
            rows = await conn.fetch(store.browse_sql.export_page, await store.bank_id(conn, bank), after, batch)
        for row in rows:
            yield MemoryDetail(stored_memory(row), row["chunk_index"])
        if len(rows) < batch:
            return
        after = rows[-1]["seq"]
