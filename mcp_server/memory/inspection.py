"""Looking inside a tenant's memory, for the dashboard: bank totals, pages of memories, one
memory, an export, and forgetting a whole bank.

Forgetting memories or a document goes through `operations.forget`, exactly as the tool does.
Names in a path that are not valid (a malformed bank name or memory id) read like names nobody
uses: the same `NotFound`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from mcp_server.errors import InvalidInput, NotFound
from mcp_server.memory import validation as check
from mcp_server.memory.arguments import MAX_QUERY_CHARS
from mcp_server.memory.operations import bank_not_found
from mcp_server.store import StoredMemory, TenantStore, UnknownBank, browse
from mcp_server.store.browse import BankStats, MemoryDetail, PageOrder, PageQuery

PAGE_ROWS = 50
ORDERS: tuple[PageOrder, ...] = ("retained", "occurred")


def memory_not_found() -> NotFound:
    """The memory is not in this bank; reads the same whoever else may have it."""
    return NotFound("no such memory in this bank.")


def path_bank(bank: str) -> str:
    """A bank named in a path: a name that cannot exist reads like one that does not."""
    try:
        return check.bank(bank)
    except InvalidInput:
        raise bank_not_found(bank[:64]) from None


def path_memory_id(memory_id: str) -> uuid.UUID:
    """A memory id named in a path: a malformed one reads like an unknown one."""
    try:
        return uuid.UUID(memory_id)
    except ValueError:
        raise memory_not_found() from None


async def banks(store: TenantStore) -> list[BankStats]:
    """Every bank of the tenant with its totals."""
    return await browse.bank_stats(store)


async def bank_totals(store: TenantStore, name: str) -> BankStats:
    """One bank's totals."""
    name = path_bank(name)
    try:
        return await browse.one_bank_stats(store, name)
    except UnknownBank:
        raise bank_not_found(name) from None


async def known_bank(store: TenantStore, name: str) -> str:
    """The bank's name if the tenant has it; the same `NotFound` whoever else may have one."""
    name = path_bank(name)
    try:
        await browse.check_bank(store, name)
    except UnknownBank:
        raise bank_not_found(name) from None
    return name


def page_query(
    bank: str,
    *,
    order: str = "retained",
    text: str | None = None,
    tags: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    after_seq: str | None = None,
    after_when: str | None = None,
) -> PageQuery:
    """A checked page request: the same bounds and time parsing as recall's filters."""
    if order not in ORDERS:
        raise InvalidInput("order must be 'retained' or 'occurred'.")
    words = (text or "").strip() or None
    if words is not None:
        check.query(words)
        if len(words) > MAX_QUERY_CHARS:
            raise InvalidInput(f"the text filter is longer than {MAX_QUERY_CHARS} characters; shorten it.")
    query = PageQuery(
        bank=path_bank(bank),
        order="occurred" if order == "occurred" else "retained",
        text=words,
        tags=check.tags([t for t in tags if t.strip()]),
        since=check.timestamp(since or None, "since"),
        until=check.timestamp(until or None, "until"),
        after_seq=_cursor_seq(after_seq),
        after_when=check.timestamp(after_when or None, "after_when") if order == "occurred" else None,
        rows=PAGE_ROWS,
    )
    if query.order == "occurred" and query.after_seq is not None and query.after_when is None:
        raise InvalidInput("a page by time needs after_when together with after_seq.")
    if query.since and query.until and query.since > query.until:
        raise InvalidInput("since is later than until; swap them or widen the window.")
    return query


def _cursor_seq(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 19:
        raise InvalidInput("after_seq must be the number the previous page's link carried.")
    return int(value)


def cursor(memory: StoredMemory) -> dict[str, str]:
    """Where the page after the one that ends with `memory` starts."""
    when = memory.occurred_at or memory.retained_at
    return {"after_seq": str(memory.seq), "after_when": when.isoformat()}


async def page(store: TenantStore, query: PageQuery) -> list[StoredMemory]:
    """One page of a bank's memories, newest first."""
    try:
        return await browse.page(store, query)
    except UnknownBank:
        raise bank_not_found(query.bank) from None


async def memory(store: TenantStore, bank: str, memory_id: str) -> MemoryDetail:
    """Every field of one memory of the bank."""
    name, wanted = path_bank(bank), path_memory_id(memory_id)
    try:
        found = await browse.memory(store, name, wanted)
    except UnknownBank:
        raise bank_not_found(name) from None
    if found is None:
        raise memory_not_found()
    return found


async def memories(store: TenantStore, bank: str, memory_ids: Sequence[str]) -> list[StoredMemory]:
    """The bank's memories among `memory_ids` (checked as the forget tool checks them)."""
    name, ids = path_bank(bank), check.memory_ids(memory_ids)
    try:
        return await browse.memories(store, name, ids)
    except UnknownBank:
        raise bank_not_found(name) from None


async def document_size(store: TenantStore, bank: str, document_id: str) -> int:
    """How many memories a document of the bank holds; `NotFound` if it holds none."""
    name, document = path_bank(bank), check.document_id(document_id)
    assert document is not None
    try:
        size = await browse.document_size(store, name, document)
    except UnknownBank:
        raise bank_not_found(name) from None
    if not size:
        raise NotFound("no such document in this bank.")
    return size


async def forget_bank(store: TenantStore, bank: str) -> int:
    """Delete a whole bank: its documents and memories, in one transaction."""
    name = path_bank(bank)
    try:
        return await store.forget_bank(name)
    except UnknownBank:
        raise bank_not_found(name) from None


def exported(detail: MemoryDetail) -> dict[str, Any]:
    """One memory as a JSON object: every field, times in ISO 8601."""
    m = detail.memory
    return {
        "id": str(m.id),
        "document_id": m.document_id,
        "chunk_index": detail.chunk_index,
        "text": m.text,
        "context": m.context,
        "tags": m.tags,
        "metadata": m.metadata,
        "occurred_at": m.occurred_at.isoformat() if m.occurred_at else None,
        "retained_at": m.retained_at.isoformat(),
    }


async def export(store: TenantStore, bank: str) -> AsyncIterator[dict[str, Any]]:
    """Every memory of the bank, in retained order, as JSON objects. The bank must exist."""
    name = await known_bank(store, bank)
    async for detail in browse.export(store, name):
        yield exported(detail)
