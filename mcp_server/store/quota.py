"""The storage limits, checked inside a retain's transaction: two ways, one lock per schema.

Two retains at the limit must not both see room, so every check holds the schema's quota lock
(a transaction-level advisory lock) until its commit.

- **Exact** (the lock to itself): taken after the retain's rows are written, then the schema's
  usage is read and the document refused if it does not fit. Retains checked this way commit one
  at a time.
- **Shared**: a small retain (at most `SHARED_MEMORIES` memories and `SHARED_BYTES` bytes) takes
  the lock in shared mode as its transaction opens (in the same round trip), and its insert
  statement reads the usage beside it (no round trip of its own). It passes when room is left for
  every transaction that could be in flight beside it:

      held + connections * SHARED_MEMORIES <= max_memories   (and the same for bytes)

  `held` is what the schema held when the insert began, read after the lock was granted;
  `connections` is the server's `max_connections`, which bounds the transactions open at once.
  Take the passing check that read its usage last: every retain committed after that read had
  read its own before, so it was in flight then, and at most `connections` were, each adding at
  most the shared amount. An exact check waits until no shared lock is held and sees everything
  they wrote, so near the limit the check stays exact.

A shared check that cannot tell raises `Crowded`, and the retain is run again, from the start,
with the exact check. Far from the limits, the shared way saves a retain its two statements and
its wait for the lock: with 8 retains in flight each waited about 12 ms for the exclusive lock.
"""

from __future__ import annotations

from mcp_server.errors import Limited
from mcp_server.store.records import NewDocument
from mcp_server.tenancy import TenantLimits

# The most a retain checked the shared way adds; larger ones always take the exact check. With
# PostgreSQL's default 100 connections, a schema is checked the shared way until it is within
# 1,600 memories or 6.4 MiB of its limit.
SHARED_MEMORIES = 16
SHARED_BYTES = 64 * 1024


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


def roomy(limits: TenantLimits, memories: int, stored: int, connections: int) -> bool:
    """Whether a schema holding `memories` and `stored` bytes has room for every connection's share."""
    return _beside_others(memories, limits.max_memories, SHARED_MEMORIES, connections) and _beside_others(
        stored, limits.max_bytes, SHARED_BYTES, connections
    )


def check_shared(limits: TenantLimits, memories: int, stored: int, connections: int) -> None:
    """Pass a small retain, or raise `Crowded`: the schema held `memories` and `stored` bytes
    without it, and the server takes `connections`."""
    if not roomy(limits, memories, stored, connections):
        raise Crowded


def check_exact(limits: TenantLimits, document: NewDocument, memories: int, stored: int, connections: int) -> bool:
    """Refuse (`Limited`) a document that does not fit beside what the schema holds without it.

    `memories` and `stored` bytes were read under the exclusive lock, after the document's rows
    were written, so they include them. Returns whether the next small retain may try the shared
    check again (the schema is not crowded, `connections` as in `roomy`).
    """
    adding, count = text_bytes(document), len(document.chunks)
    memories, stored = memories - count, stored - adding
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
