"""The storage limits, checked inside a retain's transaction, under one lock per schema.

Two retains at the limit must not both see room, so a retain that checks the limits takes the
schema's quota lock (a transaction-level advisory lock) in the string that opens its transaction,
before it locks any row, and holds it until it commits. Every retain takes it first, so no retain
can hold a row another needs while it waits for the lock: they cannot deadlock over it.

- **Shared**: a small retain (at most `SHARED_MEMORIES` memories and `SHARED_BYTES` bytes) takes
  the lock shared, and its insert statement reads the schema's usage beside it (no round trip of
  its own). It passes when room is left for every transaction that could be in flight beside it:

      held + connections * SHARED_MEMORIES <= max_memories   (and the same for bytes)

  `held` is what the schema held when the insert began, read after the lock was granted;
  `connections` is the server's `max_connections`, which bounds the transactions open at once.
  Take the committed retain whose check read its usage last: every retain that committed after
  that read had read its own before it, so it was in flight then; at most `connections` were,
  each adding at most the shared amount.
- **Exact**: any other retain, or a small one near the limits, takes the lock to itself (it waits
  until no shared holder is left, and sees all they wrote), and reads the usage after its writes.
  Retains checked this way run one at a time, so their vectors are made before it begins.
  A small retain's vectors are still being made while it holds the lock shared (the model runs
  while its transaction opens), so a retain waiting to hold the lock alone waits for those runs
  too, and new retains of the tenant queue behind it: a pause of one model run (1-3 ms here,
  an HTTP round trip with a remote embedder) whenever a large document is retained.

A shared check that cannot tell raises `Crowded`, and the retain is run again, from the start,
with the exact check. The argument holds while every write that adds memories takes the lock:
retains under limits do; a retain of a tenant with no storage limits and an import do not, and
need not.
"""

from __future__ import annotations

from typing import Literal

from asyncpg import Record

from mcp_server.db.pool import Connection
from mcp_server.errors import Limited
from mcp_server.store.records import NewDocument
from mcp_server.store.sql.memories import MemorySQL
from mcp_server.tenancy import TenantLimits

# The most a retain checked the shared way adds; larger ones always take the exact check. With
# PostgreSQL's default 100 connections, a schema is checked the shared way until it is within
# 1,600 memories or 6.4 MiB of its limit.
SHARED_MEMORIES = 16
SHARED_BYTES = 64 * 1024

# How a retain holds its schema's quota lock.
QuotaLock = Literal["shared", "exclusive"]


class Crowded(Exception):
    """A shared check found too little room to tell: run the retain again with the exact one."""


def checks_storage(limits: TenantLimits | None) -> bool:
    """Whether `limits` bound what a schema stores."""
    return limits is not None and bool(limits.max_memories or limits.max_bytes)


def text_bytes(document: NewDocument) -> int:
    """The bytes of memory text `document` adds, as the kept counts measure them."""
    return sum(len(chunk.encode("utf-8")) for chunk in document.chunks)


def may_share(limits: TenantLimits | None, document: NewDocument) -> bool:
    """Whether a retain of `document` may try the shared check (it is small, and limits apply)."""
    return (
        checks_storage(limits) and 0 < len(document.chunks) <= SHARED_MEMORIES and text_bytes(document) <= SHARED_BYTES
    )


def _beside_others(held: int, limit: int, most: int, connections: int) -> bool:
    return not limit or held + connections * most <= limit


def roomy(limits: TenantLimits, memories: int, held_bytes: int, connections: int) -> bool:
    """Whether a schema holding `memories` and `held_bytes` has room for every connection's share."""
    return _beside_others(memories, limits.max_memories, SHARED_MEMORIES, connections) and _beside_others(
        held_bytes, limits.max_bytes, SHARED_BYTES, connections
    )


def check_shared(limits: TenantLimits, memories: int, held_bytes: int, connections: int) -> None:
    """Pass a small retain, or raise `Crowded`: the schema held `memories` and `held_bytes`
    without it, and the server takes `connections`."""
    if not roomy(limits, memories, held_bytes, connections):
        raise Crowded


def check_exact(limits: TenantLimits, document: NewDocument, memories: int, held_bytes: int, connections: int) -> bool:
    """Refuse (`Limited`) a document that does not fit beside what the schema holds without it.

    `memories` and `held_bytes` were read under the lock held alone, after the document's rows
    were written, so they include them. Returns whether the next small retain may try the shared
    check again (the schema is not crowded, `connections` as in `roomy`).
    """
    adding, count = text_bytes(document), len(document.chunks)
    memories, stored = memories - count, held_bytes - adding
    if limits.max_memories and memories + count > limits.max_memories:
        raise Limited(
            f"this tenant may keep at most {limits.max_memories} memories and holds {memories}, "
            f"too many to add {count}; forget some first."
        )
    if limits.max_bytes and stored + adding > limits.max_bytes:
        raise Limited(
            f"this tenant may keep at most {limits.max_bytes} bytes of memory text and holds {stored}, "
            f"too many to add {adding}; forget some first."
        )
    return roomy(limits, memories + count, stored + adding, connections)


async def check_written(
    conn: Connection,
    sql: MemorySQL,
    limits: TenantLimits,
    document: NewDocument,
    *,
    shared: bool,
    counted: Record | None = None,
) -> bool:
    """Check `document`, whose rows are written, the shared way or exactly (the lock held alone);
    `counted` is the usage its insert read before it, if it read one. Returns whether the schema
    is not crowded.
    """
    if shared and counted is not None:
        check_shared(limits, int(counted["memories"]), int(counted["bytes"]), int(counted["connections"]))
        return True
    usage = await conn.fetchrow(sql.usage)
    assert usage is not None  # an aggregate always returns one row
    memories, held_bytes, connections = int(usage["memories"]), int(usage["bytes"]), int(usage["connections"])
    if shared:
        # A replaced document's insert read no usage: what the schema holds with its rows, less them.
        check_shared(limits, memories - len(document.chunks), held_bytes - text_bytes(document), connections)
        return True
    return check_exact(limits, document, memories, held_bytes, connections)
