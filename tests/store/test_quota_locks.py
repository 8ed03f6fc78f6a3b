"""The storage limits' lock: shared far from the limits, held alone near them, never exceeded,
and always taken before any row, so retains checked either way never deadlock."""

from __future__ import annotations

import logging
from collections import Counter

import anyio
import asyncpg
import pytest
from helpers import unique

from mcp_server.errors import Limited
from mcp_server.store import NewDocument, Provisioner, StoreRegistry, TenantStore, quota
from mcp_server.tenancy import TenantLimits

pytestmark = pytest.mark.anyio

ROOMY = TenantLimits(max_memories=1_000_000, max_bytes=1 << 30)
# The queries of the sessions `$1` blocks: their pids name it among those blocking them.
BLOCKED_BY = "SELECT query FROM pg_catalog.pg_stat_activity WHERE $1 = ANY(pg_catalog.pg_blocking_pids(pid))"


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


async def max_connections(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT pg_catalog.current_setting('max_connections')"))


async def holding_the_lock(pg_url: str, store: TenantStore, *, shared: bool) -> asyncpg.Connection:
    """A connection whose open transaction holds the schema's quota lock, shared or alone, taken
    by the statement a retain's transaction opens with."""
    conn = await asyncpg.connect(pg_url)
    await conn.execute("BEGIN")
    sql = store.memory_sql
    await conn.execute(sql.quota_lock_shared_opening if shared else sql.quota_lock_opening)
    return conn


async def retain_noting_waits(
    pg_url: str, store: TenantStore, document: NewDocument, limits: TenantLimits, holder: asyncpg.Connection
) -> str | None:
    """Retain `document`, and return the query it was waiting on `holder` with, if it waited; once
    it does, `holder` commits, so that the retain can go on. `pg_blocking_pids` tells, no timing."""
    watcher = await asyncpg.connect(pg_url)
    waited: str | None = None
    try:
        async with anyio.create_task_group() as group:
            done = anyio.Event()

            async def retain() -> None:
                await store.retain_once("b", document, same_id=True, limits=limits)
                done.set()

            group.start_soon(retain)
            while not done.is_set() and waited is None:
                waited = await watcher.fetchval(BLOCKED_BY, holder.get_server_pid())
                if waited is not None:
                    await holder.execute("COMMIT")
                await anyio.sleep(0.005)
    finally:
        await watcher.close()
    return waited


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many checks of each kind ran: `shared` passed or not, and `exact`."""
    counted: Counter[str] = Counter()
    shared, exact = quota.check_shared, quota.check_exact

    def check_shared(*args: object) -> None:
        counted["shared"] += 1
        shared(*args)  # type: ignore[arg-type]

    def check_exact(*args: object) -> bool:
        counted["exact"] += 1
        return exact(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(quota, "check_shared", check_shared)
    monkeypatch.setattr(quota, "check_exact", check_exact)
    return counted


async def test_far_from_the_limits_a_retain_shares_the_lock_with_other_checks(
    pool: asyncpg.Pool, pg_url: str, checks: Counter[str]
) -> None:
    store = await new_store(pool)
    await store.retain("b", note("seed", "one"), limits=ROOMY)
    holder = await holding_the_lock(pg_url, store, shared=True)
    try:
        assert await retain_noting_waits(pg_url, store, note("d1", "two"), ROOMY, holder) is None
    finally:
        await holder.close()
    assert await held(store) == 2 and not store.crowded
    assert checks == {"shared": 2}


async def test_a_shared_check_waits_for_an_exact_one_on_the_same_key(pool: asyncpg.Pool, pg_url: str) -> None:
    # A small retain far from the limits waits for a transaction holding the lock alone, in the
    # string its transaction opens with: the two modes share one key.
    store = await new_store(pool)
    await store.retain("b", note("seed", "one"), limits=ROOMY)
    holder = await holding_the_lock(pg_url, store, shared=False)
    try:
        waited = await retain_noting_waits(pg_url, store, note("d1", "two"), ROOMY, holder)
    finally:
        await holder.close()
    assert waited is not None and store.memory_sql.quota_lock_shared_opening in waited
    assert await held(store) == 2


async def test_near_the_limit_a_retain_waits_until_other_checks_have_committed(
    pool: asyncpg.Pool, pg_url: str, checks: Counter[str]
) -> None:
    store = await new_store(pool)
    tight = TenantLimits(max_memories=50)
    await store.retain("b", note("seed", "one"), limits=tight)
    assert store.crowded  # 50 leaves no room for every connection's share
    holder = await holding_the_lock(pg_url, store, shared=True)
    try:
        waited = await retain_noting_waits(pg_url, store, note("d1", "two"), tight, holder)
    finally:
        await holder.close()
    assert waited is not None and store.memory_sql.quota_lock_opening in waited
    assert await held(store) == 2
    # The first retain tried the shared check, found too little room and ran again exactly;
    # the second, the store knowing its schema crowded, went to the exact check at once.
    assert checks == {"shared": 1, "exact": 2}


async def test_a_shared_check_without_room_runs_the_retain_again_exactly_once(
    pool: asyncpg.Pool, checks: Counter[str]
) -> None:
    store = await new_store(pool)
    # Room for 10 more, far less than every connection's share: the shared check cannot tell.
    limits = TenantLimits(max_memories=11)
    stored = await store.retain_once("b", note("d1", "two", "three"), same_id=True, limits=limits)
    assert len(stored.memory_ids) == 2 and await held(store) == 2 and store.crowded
    assert checks == {"shared": 1, "exact": 1}
    # A document larger than a shared check allows takes the exact one, wherever the limit.
    store.crowded = False
    many = [f"chunk {i}" for i in range(quota.SHARED_MEMORIES + 1)]
    assert len(await store.retain("b", note("big", *many), limits=ROOMY)) == len(many)
    assert checks == {"shared": 1, "exact": 2} and not store.crowded
    # And so does one of more bytes than a shared check allows.
    long = "x" * (quota.SHARED_BYTES + 1)
    assert len(await store.retain("b", note("long", long), limits=ROOMY)) == 1
    assert checks == {"shared": 1, "exact": 3}
    assert await held(store) == 2 + len(many) + 1


async def test_a_retain_waiting_to_check_alone_holds_no_row_another_retain_needs(
    pool: asyncpg.Pool, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A large document waits for the lock while a small retain holds it shared. Were its rows
    # written before it asked (as an exact check once did), the small retain, writing the same
    # bank's counts and the same document next, would wait for it in turn: a deadlock.
    caplog.set_level(logging.INFO, logger="mcp_server.store.tenant_store")
    store = await new_store(pool)
    await store.retain("b", note("seed", "one"), limits=ROOMY)
    holder = await holding_the_lock(pg_url, store, shared=True)
    many = note("d", *[f"chunk {i}" for i in range(quota.SHARED_MEMORIES + 1)])
    watcher = await asyncpg.connect(pg_url)
    try:
        async with anyio.create_task_group() as group:

            async def retain_many() -> None:
                await store.retain("b", many, limits=ROOMY)

            group.start_soon(retain_many)
            while not await watcher.fetchval(BLOCKED_BY, holder.get_server_pid()):
                await anyio.sleep(0.005)
            # What the small retain holding the lock writes next: the same document, its counts.
            bank_id = await holder.fetchval(f'SELECT id FROM "{store.schema}".banks WHERE name = $1', "b")
            await holder.execute(
                f'INSERT INTO "{store.schema}".documents (bank_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
                bank_id,
                "d",
            )
            await holder.execute("COMMIT")
    finally:
        await holder.close()
        await watcher.close()
    assert await held(store) == 1 + len(many.chunks)
    # PostgreSQL found no deadlock to break (`_write` says when it retries after one).
    assert not [r for r in caplog.records if "aborted by" in r.getMessage()]


async def test_retains_crossing_from_shared_to_exact_checks_stop_at_the_limit(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, checks: Counter[str]
) -> None:
    store = await new_store(pool)
    connections = await max_connections(pool)
    # Each shared check then leaves one memory of room per connection: the first 20 memories may
    # be checked side by side, the rest one retain at a time. Every fifth retain holds two
    # memories, more than a shared check allows, so the two ways mix throughout.
    monkeypatch.setattr(quota, "SHARED_MEMORIES", 1)
    limits = TenantLimits(max_memories=connections + 20)
    stored: list[int] = []
    refused: list[int] = []

    async def retain(number: int) -> None:
        chunks = [f"memory {number}.{i}" for i in range(2 if number % 5 == 0 else 1)]
        try:
            kept = await store.retain_once(
                f"bank{number % 3}", note(f"d{number}", *chunks), same_id=True, limits=limits
            )
            stored.append(len(kept.memory_ids))
        except Limited:
            refused.append(number)

    async with anyio.create_task_group() as group:
        for number in range(limits.max_memories + 15):
            group.start_soon(retain, number)
    total = await held(store)
    assert total == sum(stored) and limits.max_memories - 1 <= total <= limits.max_memories
    assert len(refused) >= 15 and checks["shared"] > 0 and checks["exact"] > 0


async def test_a_replaced_document_is_counted_once_by_the_shared_check(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, checks: Counter[str]
) -> None:
    store = await new_store(pool)
    connections = await max_connections(pool)
    monkeypatch.setattr(quota, "SHARED_MEMORIES", 2)
    # Room for every connection's share beside one memory, not beside two: a replaced document
    # counted twice would not pass.
    limits = TenantLimits(max_memories=2 * connections + 1)
    await store.retain_once("b", note("kept", "one"), same_id=True, limits=limits)
    for version in range(3):
        replaced = await store.retain_once("b", note("d1", f"version {version}"), same_id=True, limits=limits)
        assert len(replaced.memory_ids) == 1 and not replaced.already_stored
        assert await held(store) == 2 and not store.crowded
    assert checks == {"shared": 4}
    # A second document leaves too little room to tell: the exact check stores it, and says so.
    await store.retain_once("b", note("d2", "three"), same_id=True, limits=limits)
    assert await held(store) == 3 and store.crowded
    assert checks == {"shared": 5, "exact": 1}
