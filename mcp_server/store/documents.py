"""The writes of a bank's documents, each inside the caller's tenant transaction (`TenantStore`
opens it, holding the quota lock as `store.quota` says):
- **retain**: the bank found or made, the identical document a retain need not write, and a
  document's memories written in place of its old ones, then checked against the storage limits;
- **forget**: memories, a document, or a whole bank deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from mcp_server.db.pool import Connection
from mcp_server.store import quota
from mcp_server.store.quota import QuotaLock
from mcp_server.store.records import NewDocument, RetainedDocument, UnknownBank, as_vectors
from mcp_server.store.sql.memories import MemorySQL
from mcp_server.tenancy import TenantLimits


async def bank_id_of(conn: Connection, sql: MemorySQL, bank: str) -> int:
    """The id of the bank in this schema; `UnknownBank` if there is none."""
    bank_id = await conn.fetchval(sql.bank_id, bank)
    if bank_id is None:
        raise UnknownBank(bank)
    return int(bank_id)


async def ensure_bank(conn: Connection, sql: MemorySQL, bank: str) -> int:
    """The id of the bank, created if there is none."""
    bank_id = await conn.fetchval(sql.ensure_bank, bank)
    if bank_id is None:
        # A concurrent retain created the bank: our insert waited for it to commit and did
        # nothing, and this statement's snapshot predates that commit. A new one sees it.
        return await bank_id_of(conn, sql, bank)
    return int(bank_id)


async def ensure_bank_finding_identical(
    conn: Connection, sql: MemorySQL, bank: str, document: NewDocument, *, same_id: bool
) -> tuple[int, RetainedDocument | None]:
    """`ensure_bank`, then `identical` in the bank, in one round trip."""
    if not document.chunks:
        return await ensure_bank(conn, sql, bank), None
    row = await conn.fetchrow(sql.ensure_bank_finding_identical, bank, *_identical_values(document, same_id=same_id))
    if row is None:
        # As in `ensure_bank`: a concurrent retain created the bank, and a new snapshot sees it.
        bank_id = await bank_id_of(conn, sql, bank)
        return bank_id, await identical(conn, sql, bank_id, document, same_id=same_id)
    return int(row["bank_id"]), _already_stored(row) if row["document_id"] is not None else None


async def identical(
    conn: Connection, sql: MemorySQL, bank_id: int, document: NewDocument, *, same_id: bool
) -> RetainedDocument | None:
    """The document of the bank holding exactly `document`'s chunks and fields, if one does
    (with `same_id`, only the document of that id counts)."""
    if not document.chunks:
        return None
    row = await conn.fetchrow(sql.identical_document, bank_id, *_identical_values(document, same_id=same_id))
    return None if row is None else _already_stored(row)


def _identical_values(document: NewDocument, *, same_id: bool) -> tuple[Any, ...]:
    """The values of `identical_document` after the bank: $2 to $7."""
    return (
        document.document_id if same_id else None,
        list(document.chunks),
        document.context,
        list(document.tags),
        document.metadata,
        document.occurred_at,
    )


def _already_stored(row: asyncpg.Record) -> RetainedDocument:
    """The identical document an `identical_document` row names, which a retain need not write."""
    return RetainedDocument(row["document_id"], list(row["ids"]), already_stored=True)


async def write_document(
    conn: Connection,
    sql: MemorySQL,
    bank_id: int,
    document: NewDocument,
    ids: list[uuid.UUID],
    vectors: Sequence[Any] | None,
    limits: TenantLimits | None,
    lock: QuotaLock | None = None,
    *,
    vector_index_from: int,
) -> bool | None:
    """Replace the document's memories, then check `limits` as the quota `lock` the transaction
    opened with allows (none: no limits to check; see `store.quota`).

    `vectors`, one per chunk, are stored as the chunks' embeddings (None: the schema has none, or
    they were not made); they join the vector index once the bank holds `vector_index_from`
    memories (`store.sql.memories.VECTOR_INDEX`). Returns whether the schema is not crowded
    (`quota.check_written`), None when no limits were checked; a document past them is refused as
    `Limited`.
    """
    values: tuple[Any, ...] = (
        bank_id,
        document.document_id,
        ids,
        list(document.chunks),
        document.context,
        list(document.tags),
        document.metadata,
        document.occurred_at,
    )
    embedded = vectors is not None
    if embedded:
        values = (*values, as_vectors(vectors or ()), vector_index_from)
    # A new document has no memories to replace: its memories go in with its row. Skipping
    # the delete also spares a bank the planner has no statistics for yet a scan of all its
    # memories (1 ms per 3,500). Checked the shared way, the insert reads the usage too.
    counted: asyncpg.Record | None = None
    if lock == "shared":
        upsert = sql.upsert_new_document_embedded_counted if embedded else sql.upsert_new_document_counted
        counted = await conn.fetchrow(upsert, *values)
        assert counted is not None  # the upsert returns its one row
        created = bool(counted["created"])
    else:
        upsert = sql.upsert_new_document_embedded if embedded else sql.upsert_new_document
        created = bool(await conn.fetchval(upsert, *values))
    if not created:
        counted = None
        await conn.execute(sql.delete_document_memories, bank_id, document.document_id)
        await conn.execute(sql.insert_memories_embedded if embedded else sql.insert_memories, *values)
    if lock is None or limits is None:
        return None
    return await quota.check_written(conn, sql, limits, document, shared=lock == "shared", counted=counted)


async def forget_memories(conn: Connection, sql: MemorySQL, bank: str, memory_ids: Sequence[uuid.UUID]) -> int:
    """Delete these memories of the bank (ids elsewhere are ignored), and the documents left
    empty; returns how many went."""
    bank_id = await bank_id_of(conn, sql, bank)
    # Documents before memories, as retain takes them, in one order across callers.
    held = [row["document_id"] for row in await conn.fetch(sql.documents_of_memories, bank_id, list(memory_ids))]
    await conn.execute(sql.lock_documents, bank_id, held)
    rows = await conn.fetch(sql.delete_memories, bank_id, list(memory_ids))
    documents = sorted({row["document_id"] for row in rows})
    if documents:
        await conn.execute(sql.delete_empty_documents, bank_id, documents)
    return len(rows)


async def forget_document(conn: Connection, sql: MemorySQL, bank: str, document_id: str) -> int:
    """Delete a document of the bank and all its memories; returns how many memories went."""
    bank_id = await bank_id_of(conn, sql, bank)
    await conn.execute(sql.lock_documents, bank_id, [document_id])
    status = await conn.execute(sql.delete_document_memories, bank_id, document_id)
    await conn.execute(sql.delete_document, bank_id, document_id)
    return int(status.rsplit(" ", 1)[-1])


async def forget_bank(conn: Connection, sql: MemorySQL, bank: str) -> int:
    """Delete the bank with every document and memory in it; returns how many memories went."""
    bank_id = await bank_id_of(conn, sql, bank)
    deleted = await conn.fetchval(sql.delete_bank_memories, bank_id)
    await conn.execute(sql.delete_bank, bank_id)
    return int(deleted)
