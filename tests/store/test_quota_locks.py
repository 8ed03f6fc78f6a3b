"""The storage limits' lock: shared far from the limits, to itself near them, never exceeded."""

from __future__ import annotations

import anyio
import asyncpg
import pytest
from helpers import unique

from mcp_server.errors import Limited
from mcp_server.store import NewDocument, Provisioner, StoreRegistry, TenantStore, quota
from mcp_server.store.sql.memories import quota_key
from mcp_server.tenancy import TenantLimits

pytestmark = pytest.mark.anyio

WAITING_FOR_ADVISORY_LOCKS = "SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND NOT granted"
ROOMY = TenantLimits(max_memories=1_000_000, max_bytes=1 << 30)


def note(document_id: str, *chunks: str) -> NewDocument:
    return NewDocument(
        document_id=document_id, chunks=list(chunks), context=None, tags=[], metadata={}, occurred_at=None
    )


async def new_store(pool: asyncpg.Pool) -> TenantStore:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    return await StoreRegistry(pool, provisioner).for_schema(unique("quota_lock"))


async def held(store: TenantStore) -> int:
    return sum(bank.memories for bank in await store.list_banks())


async def holding_the_lock(pg_url: str, store: TenantStore, *, shared: bool) -> asyncpg.Connection:
    """A connection whose open transaction holds the schema's quota lock, shared or to itself."""
    conn = await asyncpg.connect(pg_url)
    await conn.execute("BEGIN")
    if shared:
        await conn.execute(store.memory_sql.quota_lock_shared_opening)
    else:
        await conn.execute(store.memory_sql.quota_lock, quota_key(store.schema))
    return conn


async def retain_noting_waits(
    pg_url: str, store: TenantStore, document: NewDocument, limits: TenantLimits, holder: asyncpg.Connection
) -> bool:
    """Retain `document`, and say whether it waited for an advisory lock meanwhile; once it
    does, `holder` commits, so that the retain can go on.

    `pg_locks` shows a lock a transaction waits for as not granted, so this needs no timing.
    """
    watcher = await asyncpg.connect(pg_url)
    waited = False
    try:
        async with anyio.create_task_group() as group:
            done = anyio.Event()

            async def retain() -> None:
                await store.retain_once("b", document, same_id=True, limits=limits)
                done.set()

            group.start_soon(retain)
            while not done.is_set() and not waited:
                waited = bool(await watcher.fetchval(WAITING_FOR_ADVISORY_LOCKS))
                if waited:
                    await holder.execute("COMMIT")
                await anyio.sleep(0.005)
    finally:
        await watcher.close()
    return waited


async def test_far_from_the_limits_a_retain_shares_the_lock_with_other_checks(pool: asyncpg.Pool, pg_url: str) -> None:
    store = await new_store(pool)
    await store.retain("b", note("seed", "one"), limits=ROOMY)
    holder = await holding_the_lock(pg_url, store, shared=True)
    try:
        assert not await retain_noting_waits(pg_url, store, note("d1", "two"), ROOMY, holder)
    finally:
        await holder.close()
    assert await held(store) == 2 and not store.crowded


async def test_a_shared_check_waits_for_an_exact_one_on_the_same_key(pool: asyncpg.Pool, pg_url: str) -> None:
    # The lock taken as the transaction opens is keyed as `quota_key` says: an exact check holding
    # the lock makes a small retain far from the limits wait until it has committed.
    store = await new_store(pool)
    await store.retain("b", note("seed", "one"), limits=ROOMY)
    holder = await holding_the_lock(pg_url, store, shared=False)
    try:
        assert await retain_noting_waits(pg_url, store, note("d1", "two"), ROOMY, holder)
    finally:
        await holder.close()
    assert await held(store) == 2


async def test_near_the_limit_a_retain_waits_until_other_checks_have_committed(pool: asyncpg.Pool, pg_url: str) -> None:
    store = await new_store(pool)
    tight = TenantLimits(max_memories=50)
    await store.retain("b", note("seed", "one"), limits=tight)
    assert store.crowded  # 50 leaves no room for every connection's share
    holder = await holding_the_lock(pg_url, store, shared=True)
    try:
        assert await retain_noting_waits(pg_url, store, note("d1", "two"), tight, holder)
    finally:
        await holder.close()
    assert await held(store) == 2


async def test_a_shared_check_without_room_runs_the_retain_again_exactly_once(pool: asyncpg.Pool) -> None:
    store = await new_store(pool)
    # Room for 10 more, far less than every connection's share: the shared check cannot tell.
    limits = TenantLimits(max_memories=11)
    await store.retain("b", note("seed", "one"), limits=limits)
    store.crowded = False
    stored = await store.retain_once("b", note("d1", "two", "three"), same_id=True, limits=limits)
    assert len(stored.memory_ids) == 2 and await held(store) == 3 and store.crowded
    # A document larger than a shared check allows takes the exact one, wherever the limit.
    store.crowded = False
    many = [f"chunk {i}" for i in range(quota.SHARED_MEMORIES + 1)]
    assert len(await store.retain("b", note("big", *many), limits=ROOMY)) == len(many)
    assert await held(store) == 3 + len(many) and not store.crowded
    # And so does one of more bytes than a shared check allows.
    long = "x" * (quota.SHARED_BYTES + 1)
    assert len(await store.retain("b", note("long", long), limits=ROOMY)) == 1


async def test_retains_crossing_from_shared_to_exact_checks_stop_at_the_limit(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await new_store(pool)
    async with pool.acquire() as conn:
        connections = int(await conn.fetchval("SELECT pg_catalog.current_setting('max_connections')"))
    # Each shared check then leaves one memory of room per connection: the first 20 retains
    # may check side by side, the rest one at a time, and the limit is met exactly.
    monkeypatch.setattr(quota, "SHARED_MEMORIES", 1)
    limits = TenantLimits(max_memories=connections + 20)
    stored, refused = [], []

    async def retain(number: int) -> None:
        try:
            document = note(f"d{number}", f"memory {number}")
            stored.append(await store.retain_once(f"bank{number % 3}", document, same_id=True, limits=limits))
        except Limited:
            refused.append(number)

    async with anyio.create_task_group() as group:
        for number in range(limits.max_memories + 15):
            group.start_soon(retain, number)
    assert (len(stored), len(refused)) == (limits.max_memories, 15)
    assert await held(store) == limits.max_memories


async def test_a_replaced_document_is_counted_once_by_the_shared_check(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await new_store(pool)
    async with pool.acquire() as conn:
        connections = int(await conn.fetchval("SELECT pg_catalog.current_setting('max_connections')"))
    monkeypatch.setattr(quota, "SHARED_MEMORIES", 2)
    # Room for every connection's share beside one memory, not beside two: a replaced document
    # counted twice would not pass.
    limits = TenantLimits(max_memories=2 * connections + 1)
    await store.retain_once("b", note("kept", "one"), same_id=True, limits=limits)
    for version in range(3):
        replaced = await store.retain_once("b", note("d1", f"version {version}"), same_id=True, limits=limits)
        assert len(replaced.memory_ids) == 1 and not replaced.already_stored
        assert await held(store) == 2 and not store.crowded
    # A second document leaves too little room to tell: the exact check stores it, and says so.
    await store.retain_once("b", note("d2", "three"), same_id=True, limits=limits)
    assert await held(store) == 3 and store.crowded
