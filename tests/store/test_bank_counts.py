"""Per-bank counts: kept in the transaction of every change, equal to a full count, read by list_banks."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import anyio
import asyncpg
import pytest
from helpers import call, in_process_client, unique

from mcp_server.config import load_settings
from mcp_server.db.migrations import load_migrations
from mcp_server.db.pool import create_pool
from mcp_server.store import NewDocument, Provisioner, StoreRegistry, TenantStore

pytestmark = pytest.mark.anyio

BANKS = ("alpha", "beta")
WORKERS = 8
STEPS = 40


@pytest.fixture
async def wide_pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool with a connection per worker, so every change really runs at once."""
    pool = await create_pool(load_settings(_env_file=None, database_url=pg_url, pool_min_size=0, pool_max_size=WORKERS))
    yield pool
    await pool.close()


def document(document_id: str, chunks: int, seed: int) -> NewDocument:
    return NewDocument(
        document_id=document_id,
        chunks=[f"note {seed}.{i} about {document_id}" for i in range(chunks)],
        context=None,
        tags=[],
        metadata={},
        occurred_at=None,
    )


async def full_counts(store: TenantStore) -> dict[str, tuple[int, int]]:
    """Memories and documents per bank, counted row by row."""
    schema = f'"{store.schema}"'
    async with store.transaction() as conn:
        rows = await conn.fetch(
            f"SELECT b.name, (SELECT count(*) FROM {schema}.memories AS m WHERE m.bank_id = b.id) AS memories,"
            f" (SELECT count(*) FROM {schema}.documents AS d WHERE d.bank_id = b.id) AS documents"
            f" FROM {schema}.banks AS b"
        )
    return {row["name"]: (row["memories"], row["documents"]) for row in rows}


async def full_usage(store: TenantStore) -> tuple[int, int]:
    """Memories and bytes of memory text in the schema, counted row by row."""
    async with store.transaction() as conn:
        row = await conn.fetchrow(
            f'SELECT count(*), coalesce(sum(octet_length(text)), 0) FROM "{store.schema}".memories'
        )
    assert row is not None
    return int(row[0]), int(row[1])


async def kept_usage(store: TenantStore) -> tuple[int, int]:
    """What a retain's quota check reads: the kept counts."""
    async with store.transaction() as conn:
        row = await conn.fetchrow(store.memory_sql.usage)
    assert row is not None
    return int(row["memories"]), int(row["bytes"])


async def kept_counts(store: TenantStore) -> dict[str, tuple[int, int]]:
    return {b.name: (b.memories, b.documents) for b in await store.list_banks()}


async def churn(store: TenantStore, worker: int) -> None:
    """Retains, replaces and forgets in both banks, on documents of this worker's own.

    Workers share the banks (and so their counts) but no document: the counts are what they
    contend on.
    """
    rng = random.Random(worker)
    retained: dict[tuple[str, str], list[uuid.UUID]] = {}
    for step in range(STEPS):
        bank = rng.choice(BANKS)
        document_id = f"w{worker}-d{rng.randrange(6)}"
        key = (bank, document_id)
        action = rng.random()
        if action < 0.55:  # a new document, or a replacement of one already there
            retained[key] = await store.retain(bank, document(document_id, rng.randint(1, 4), step))
        elif action < 0.8 and retained.get(key):
            ids = retained[key]
            gone = rng.sample(ids, rng.randint(1, len(ids)))
            assert await store.forget_memories(bank, [*gone, uuid.uuid4()]) == len(gone)
            retained[key] = [i for i in ids if i not in gone]
        elif key in retained:
            assert await store.forget_document(bank, document_id) == len(retained.pop(key))


async def test_counts_equal_a_full_count_after_concurrent_retains_replaces_and_forgets(
    wide_pool: asyncpg.Pool,
) -> None:
    provisioner = Provisioner(wide_pool)
    await provisioner.bootstrap()
    store = await StoreRegistry(wide_pool, provisioner).for_schema(unique("counts"))
    async with anyio.create_task_group() as group:
        for worker in range(WORKERS):
            group.start_soon(churn, store, worker)
    counted = await full_counts(store)
    assert set(counted) == set(BANKS)
    assert sum(memories for memories, _ in counted.values()) > 0
    assert await kept_counts(store) == counted
    assert await kept_usage(store) == await full_usage(store)

    # The last retain time is that of the newest memory, once one is retained after the churn.
    for bank in BANKS:
        await store.retain(bank, document("last", 2, STEPS))
    async with store.transaction() as conn:
        newest = dict(
            await conn.fetch(
                f'SELECT b.name, max(m.retained_at) FROM "{store.schema}".banks AS b'
                f' JOIN "{store.schema}".memories AS m ON m.bank_id = b.id GROUP BY b.name'
            )
        )
    assert {b.name: b.last_retained_at for b in await store.list_banks()} == newest
    assert await kept_counts(store) == await full_counts(store)


async def test_a_change_that_fails_changes_no_count(pool: asyncpg.Pool) -> None:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    store = await StoreRegistry(pool, provisioner).for_schema(unique("counts"))
    await store.retain("alpha", document("doc", 3, 0))
    # The replacement's delete runs (and is counted) before its insert is refused: all of it goes.
    broken = replace(document("doc", 2, 1), occurred_at="not a time")
    with pytest.raises(asyncpg.DataError):
        await store.retain("alpha", broken)
    assert await kept_counts(store) == await full_counts(store) == {"alpha": (3, 1)}
    assert await kept_usage(store) == await full_usage(store)


async def test_deleting_a_bank_takes_its_counts_with_it(pool: asyncpg.Pool) -> None:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    store = await StoreRegistry(pool, provisioner).for_schema(unique("counts"))
    await store.retain("alpha", document("a", 2, 0))
    await store.retain("beta", document("b", 3, 0))
    async with store.transaction() as conn:
        # The cascade deletes the bank's documents and memories, whose triggers find no bank to count.
        await conn.execute(f'DELETE FROM "{store.schema}".banks WHERE name = $1', "alpha")
        assert await conn.fetchval(f'SELECT count(*) FROM "{store.schema}".bank_counts') >= 1
    assert await kept_counts(store) == await full_counts(store) == {"beta": (3, 1)}


async def store_migrated_before(pool: asyncpg.Pool, migration: str) -> TenantStore:
    """A new schema provisioned only up to the migration whose name ends with `migration`."""
    migrations = load_migrations()
    stop = next(m for m in migrations if m.name.endswith(migration))
    earlier = Provisioner(pool, migrations=[m for m in migrations if m.version < stop.version])
    await earlier.bootstrap()
    schema = unique("older")
    await earlier.provision(schema)
    return TenantStore(pool, schema, vector_schema=earlier.vector_schema)


async def migrated_now(older: TenantStore) -> TenantStore:
    """The same schema after every current migration."""
    current = Provisioner(older.pool)
    await current.bootstrap()
    await current.provision(older.schema)
    return TenantStore(older.pool, older.schema, vector_schema=current.vector_schema)


async def test_a_schema_migrated_before_counts_existed_gets_them_from_its_rows(pool: asyncpg.Pool) -> None:
    older = await store_migrated_before(pool, "bank_counts")
    await older.retain("alpha", document("a", 3, 0))
    await older.retain("alpha", document("b", 1, 0))
    await older.retain("beta", document("c", 2, 0))

    store = await migrated_now(older)
    assert await kept_counts(store) == {"alpha": (4, 2), "beta": (2, 1)}
    assert await kept_usage(store) == await full_usage(store)
    await store.forget_document("alpha", "a")
    assert await kept_counts(store) == await full_counts(store) == {"alpha": (1, 1), "beta": (2, 1)}
    assert await kept_usage(store) == await full_usage(store)


async def test_a_schema_counted_before_bytes_were_kept_gets_them_from_its_rows(pool: asyncpg.Pool) -> None:
    older = await store_migrated_before(pool, "bank_bytes")
    await older.retain("alpha", document("a", 3, 0))
    await older.retain("beta", document("b", 2, 0))
    await older.forget_document("beta", "b")
    await older.retain("beta", document("c", 1, 0))

    store = await migrated_now(older)
    assert (await kept_usage(store))[1] > 0
    assert await kept_usage(store) == await full_usage(store)
    await store.retain("alpha", document("a", 1, 1))
    assert await kept_usage(store) == await full_usage(store)


async def test_list_banks_reports_the_kept_counts(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("counts")) as client:
        await call(client, "retain", content="Kiwis grow on vines.", bank="orchard", document_id="kiwi")
        await call(client, "retain", content="Figs ripen in August.", bank="orchard")
        [orchard] = (await call(client, "list_banks"))["banks"]
        assert (orchard["bank"], orchard["memories"], orchard["documents"]) == ("orchard", 2, 2)
        replaced = await call(client, "retain", content="Kiwis need a male vine.", bank="orchard", document_id="kiwi")
        await call(client, "forget", bank="orchard", memory_ids=replaced["memory_ids"])
        [orchard] = (await call(client, "list_banks"))["banks"]
        assert (orchard["bank"], orchard["memories"], orchard["documents"]) == ("orchard", 1, 1)
        assert orchard["last_retained_at"] is not None
