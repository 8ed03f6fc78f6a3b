"""Concurrent writes to one document: locks are taken in one order, so nothing deadlocks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import anyio
import asyncpg
import pytest
from helpers import unique

from mcp_server.errors import ErrorKind, Unavailable
from mcp_server.store import NewDocument, Provisioner, StoreRegistry, TenantStore

pytestmark = pytest.mark.anyio

ROUNDS = 60


def chunks(document_id: str, count: int) -> NewDocument:
    return NewDocument(
        document_id=document_id,
        chunks=[f"chunk {i} of {document_id}" for i in range(count)],
        context=None,
        tags=[],
        metadata={},
        occurred_at=None,
    )


async def store_for(pool: asyncpg.Pool) -> TenantStore:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    return await StoreRegistry(pool, provisioner).for_schema(unique("locks"))


async def document_state(store: TenantStore, document_id: str) -> tuple[int, int]:
    """(documents, memories) stored under `document_id` in bank `b`."""
    async with store.transaction() as conn:
        documents = await conn.fetchval(
            store.memory_sql.names.render("SELECT count(*) FROM {schema}.documents WHERE id = $1"), document_id
        )
        memories = await conn.fetchval(
            store.memory_sql.names.render("SELECT count(*) FROM {schema}.memories WHERE document_id = $1"),
            document_id,
        )
    return int(documents), int(memories)


async def test_replace_and_forget_of_one_document_never_deadlock(pool: asyncpg.Pool) -> None:
    store = await store_for(pool)
    failures: list[Exception] = []

    async def attempt(job: Callable[[], Awaitable[object]]) -> None:
        try:
            await job()
        except Exception as exc:  # every failure is what the test counts
            failures.append(exc)

    for round_number in range(ROUNDS):
        document_id = f"d{round_number}"
        first = await store.retain("b", chunks(document_id, 20))
        async with anyio.create_task_group() as group:
            group.start_soon(attempt, partial(store.retain, "b", chunks(document_id, 20)))
            group.start_soon(attempt, partial(store.forget_document, "b", document_id))
            group.start_soon(attempt, partial(store.forget_memories, "b", first[::-1]))
        # All or nothing: the document is either gone or whole with the replacement's 20 chunks.
        assert await document_state(store, document_id) in {(0, 0), (1, 20)}
    assert failures == []


async def inject_contention(pg_url: str, store: TenantStore, failures: int) -> asyncpg.Connection:
    """Make PostgreSQL abort the next `failures` inserts into the store's memories as deadlocked.

    A trigger raises SQLSTATE 40P01, PostgreSQL's own deadlock error, from a sequence (which no
    rollback resets), so the count holds across retries.
    """
    admin = await asyncpg.connect(pg_url)
    table = store.memory_sql.names.render("{schema}.memories")
    counter = store.memory_sql.names.render("{schema}.injected_faults")
    function = store.memory_sql.names.render("{schema}.inject_deadlock")
    await admin.execute(f"CREATE SEQUENCE {counter}")
    await admin.execute(f"""
        CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
        BEGIN
            IF pg_catalog.nextval('{counter}') <= {int(failures)} THEN
                RAISE EXCEPTION 'injected deadlock' USING ERRCODE = '40P01';
            END IF;
            RETURN NULL;
        END $$
    """)
    await admin.execute(
        f"CREATE TRIGGER inject AFTER INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )
    return admin


async def test_a_write_aborted_by_contention_is_retried_once(pool: asyncpg.Pool, pg_url: str) -> None:
    store = await store_for(pool)
    await store.retain("b", chunks("kept", 2))
    admin = await inject_contention(pg_url, store, failures=1)
    try:
        ids = await store.retain("b", chunks("kept", 3))
        assert len(ids) == 3
        assert await document_state(store, "kept") == (1, 3)
        # The aborted attempt's first insert statement, then the retry's two: a replacement's
        # upsert inserts no memory (the document was there), and the insert after its delete does.
        assert (
            await admin.fetchval(store.memory_sql.names.render("SELECT last_value FROM {schema}.injected_faults")) == 3
        )
    finally:
        await admin.close()


async def test_a_write_aborted_twice_is_unavailable_and_changes_nothing(pool: asyncpg.Pool, pg_url: str) -> None:
    store = await store_for(pool)
    await store.retain("b", chunks("kept", 2))
    admin = await inject_contention(pg_url, store, failures=2)
    try:
        with pytest.raises(Unavailable) as refused:
            await store.retain("b", chunks("kept", 5))
        assert refused.value.kind is ErrorKind.UNAVAILABLE
        assert "retry" in refused.value.message
        assert await document_state(store, "kept") == (1, 2)
        # The next call is served.
        assert len(await store.retain("b", chunks("kept", 4))) == 4
    finally:
        await admin.close()
