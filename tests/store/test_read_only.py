"""Read-only transactions: PostgreSQL refuses their writes, and they end after the caller has its answer.

A read's COMMIT has nothing to keep, so `TenantStore.transaction(read_only=True)` hands it to
`LateCommits`, which sends it and then releases the connection while the caller goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest
from helpers import unique

from mcp_server.config import load_settings
from mcp_server.db.pool import create_pool
from mcp_server.store import NewDocument, Provisioner, SearchRequest, StoreRegistry, TenantStore

pytestmark = pytest.mark.anyio


@pytest.fixture
async def one_connection(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection: every transaction waits for the one before it to give it back."""
    pool = await create_pool(load_settings(_env_file=None, database_url=pg_url, pool_min_size=1, pool_max_size=1))
    yield pool
    await pool.close()


async def store_on(pool: asyncpg.Pool) -> TenantStore:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    return await StoreRegistry(pool, provisioner).for_schema(unique("s"))


def note(document_id: str, text: str) -> NewDocument:
    return NewDocument(document_id, [text], None, [], {}, None)


async def open_transactions(pool: asyncpg.Pool) -> int:
    """Server connections of the test database that sit inside a transaction, this one's aside."""
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity"
                " WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()"
                " AND state LIKE 'idle in transaction%'"
            )
        )


async def test_a_read_only_transaction_refuses_writes_and_leaves_nothing(pool: asyncpg.Pool) -> None:
    store = await store_on(pool)
    await store.retain("kept", note("a", "the kept note"), None)
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        async with store.transaction(read_only=True) as conn:
            await conn.fetchval(store.memory_sql.ensure_bank, "sneaked in")
    for read in ({"read_only": True}, {"plans": "custom"}, {"plans": "generic"}, {"snapshot": True}):
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            async with store.transaction(**read) as conn:
                await conn.execute(store.memory_sql.delete_bank, await store.bank_id(conn, "kept"))
    await store.late_commits.settle()
    assert [(b.name, b.memories) for b in await store.list_banks()] == [("kept", 1)]


async def test_reads_answer_before_their_commit_and_give_the_connection_back(one_connection: asyncpg.Pool) -> None:
    store = await store_on(one_connection)
    await store.retain("notes", note("first", "tea with Alice on Monday"), None)
    banks = await store.list_banks()
    # The answer is back; the COMMIT is still to be sent, by a task that has not yet run.
    assert [b.name for b in banks] == ["notes"] and store.late_commits.pending == 1
    await store.late_commits.settle()
    assert store.late_commits.pending == 0
    assert await open_transactions(one_connection) == 0

    # Reads and writes in turn on the one connection: each waits for the read before it to
    # end and give the connection back, and each write sees every write before it.
    search = SearchRequest(bank="notes", ranked_query="'tea'", terms=["'tea'"])
    with anyio.fail_after(30):
        for i in range(40):
            await store.retain("notes", note(f"n{i}", f"tea number {i}"), None)
            assert {b.name: b.memories for b in await store.list_banks()}["notes"] == i + 2
            assert len(await store.search(search)) == min(i + 2, search.per_leg)
            assert await store.find_identical("notes", note(f"n{i}", f"tea number {i}"), same_id=True)
    await store.late_commits.settle()
    assert await open_transactions(one_connection) == 0
    async with one_connection.acquire() as conn:
        assert not conn.is_in_transaction()


async def test_a_failed_read_is_rolled_back_and_its_connection_returned(one_connection: asyncpg.Pool) -> None:
    store = await store_on(one_connection)
    with pytest.raises(asyncpg.UndefinedColumnError):
        async with store.transaction(read_only=True) as conn:
            await conn.fetch(store.memory_sql.list_banks.replace("b.name", "b.no_such_column", 1))
    assert store.late_commits.pending == 0
    with anyio.fail_after(10):
        assert await store.list_banks() == []
    await store.late_commits.settle()
    assert await open_transactions(one_connection) == 0
