"""The store and its migrations against real PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import anyio
import asyncpg
import pytest
from helpers import full_text, unique

from mcp_server.config import load_settings
from mcp_server.db.migrations import load_migrations
from mcp_server.db.pool import create_pool
from mcp_server.errors import InvalidInput
from mcp_server.store import NewDocument, Provisioner, SearchRequest, StoreRegistry, TenantStore, UnknownBank
from mcp_server.store.sql import SchemaNames, StatementGroup, render
from mcp_server.store.sql.groups import SCHEMA_GROUPS, render_all
from mcp_server.store.sql.search import SearchSQL

pytestmark = pytest.mark.anyio


async def provisioned_store(pool: asyncpg.Pool) -> TenantStore:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    return await StoreRegistry(pool, provisioner).for_schema(unique("s"))


def document(document_id: str, *chunks: str, **fields: object) -> NewDocument:
    return NewDocument(
        document_id=document_id,
        chunks=list(chunks),
        context=fields.get("context"),  # type: ignore[arg-type]
        tags=fields.get("tags", []),  # type: ignore[arg-type]
        metadata=fields.get("metadata", {}),  # type: ignore[arg-type]
        occurred_at=fields.get("occurred_at"),  # type: ignore[arg-type]
    )


def test_statements_are_rendered_for_a_quoted_valid_schema_only() -> None:
    statements = SearchSQL.for_schema("tenant_a")
    assert '"tenant_a".memories' in statements.search_lexical
    assert '"tenant_a".memories' in statements.search_hybrid and '"bulkhead_ext".<=>' in statements.search_hybrid
    everything = render_all(SchemaNames("tenant_a"))
    assert not any(placeholder in text for text in everything.values() for placeholder in ("{schema}", "{role}"))
    assert render("DEFAULT '{}' ON {schema}", schema='"s"') == "DEFAULT '{}' ON \"s\""
    for bad in ('x"; DROP SCHEMA public; --', "Tenant", "pg_catalog", ""):
        with pytest.raises(InvalidInput):
            SearchSQL.for_schema(bad)


def test_every_statement_group_is_listed_and_search_binds_by_name() -> None:
    assert set(StatementGroup.__subclasses__()) == set(SCHEMA_GROUPS)
    search = SearchSQL.for_schema("tenant_a")
    assert "$" not in search.search_hybrid and ":vector" not in search.search_lexical
    assert set(search.lexical.names) | {"vector", "exact_max", "filtered_max"} == set(search.hybrid.names)
    with pytest.raises(KeyError, match="common_words"):
        search.lexical.arguments({"bank_id": 1})


def test_migrations_are_numbered_and_carry_their_requirements() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    assert migrations[0].requires == frozenset()
    assert any("vector" in m.requires for m in migrations)


async def test_provisioning_twice_at_once_applies_each_migration_once(pool: asyncpg.Pool, pg_url: str) -> None:
    schema = unique("race")
    other = await create_pool(load_settings(_env_file=None, database_url=pg_url))
    try:
        first, second = Provisioner(pool), Provisioner(other)
        await first.bootstrap()
        await second.bootstrap()
        async with anyio.create_task_group() as group:
            group.start_soon(first.provision, schema)
            group.start_soon(second.provision, schema)
        versions = await pool.fetch(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version')
        assert [r["version"] for r in versions] == [m.version for m in load_migrations()]
        # A new process finds nothing left to do.
        third = Provisioner(other)
        await third.bootstrap()
        await third.provision(schema)
        assert await pool.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') == len(versions)
    finally:
        await other.close()


async def test_memories_table_has_search_and_vector_columns(pool: asyncpg.Pool) -> None:
    store = await provisioned_store(pool)
    columns = {
        r["column_name"]: r["udt_name"]
        for r in await pool.fetch(
            "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = $1 "
            "AND table_name = 'memories'",
            store.schema,
        )
    }
    assert columns["search"] == "tsvector"
    assert columns["embedding"] == "vector"


async def test_retain_replaces_a_document_atomically(pool: asyncpg.Pool) -> None:
    store = await provisioned_store(pool)
    when = datetime(2024, 5, 8, 13, 45, 30, 123456, tzinfo=UTC)
    first = await store.retain(
        "bank",
        document("doc", "one alpha", "two alpha", tags=["x"], metadata={"k": [1, {"v": None}]}, occurred_at=when),
    )
    found = await full_text(store, "bank", "alpha")
    assert {m.id for m in found} == set(first)
    assert all(m.metadata == {"k": [1, {"v": None}]} and m.occurred_at == when and m.tags == ["x"] for m in found)

    # A replacement that fails half-way (the insert is refused after the delete ran) changes nothing.
    with pytest.raises(asyncpg.DataError):
        await store.retain("bank", document("doc", "three alpha", occurred_at="not a datetime"))
    found = await full_text(store, "bank", "alpha")
    assert {m.id for m in found} == set(first)

    second = await store.retain("bank", document("doc", "four alpha"))
    found = await full_text(store, "bank", "alpha")
    assert [m.id for m in found] == second
    [summary] = await store.list_banks()
    assert (summary.name, summary.memories, summary.documents) == ("bank", 1, 1)


async def test_a_retain_into_a_bank_another_transaction_is_creating_waits_and_joins_it(pool: asyncpg.Pool) -> None:
    store = await provisioned_store(pool)
    async with anyio.create_task_group() as group, store.transaction() as creating:
        bank_id = await creating.fetchval(store.memory_sql.ensure_bank, "fresh")
        done: list[object] = []

        async def retain_once() -> None:
            done.append(await store.retain_once("fresh", document("d", "joins the new bank"), same_id=True))

        group.start_soon(retain_once)
        # The retain waits on the uncommitted bank row; once it is committed, its statement's
        # snapshot still predates the bank, and a second look finds it.
        await anyio.sleep(0.5)
        assert not done
    [retained] = done
    [summary] = await store.list_banks()
    assert (summary.name, summary.memories) == ("fresh", 1)
    async with store.transaction(read_only=True) as conn:
        assert await store.bank_id(conn, "fresh") == bank_id
    assert await store.retain_once("fresh", document("d", "joins the new bank"), same_id=True) == dataclasses.replace(
        retained, already_stored=True
    )


async def test_search_numbers_the_query_terms_each_memory_holds(pool: asyncpg.Pool) -> None:
    store = await provisioned_store(pool)
    await store.retain(
        "bank", document("doc", "Goats climb the wire fence", "The fence was painted", "Climbers love goats")
    )
    terms = ["what", "goats", "fence", "climb:*"]  # a stop word, two words, a prefix
    request = SearchRequest(
        bank="bank", ranked_query=" | ".join(terms), terms=terms, per_leg=10, neighbour_window=timedelta(0)
    )
    held = {c.memory.text: c.matched for c in await store.search(request)}
    assert held == {
        "Goats climb the wire fence": {1, 2, 3},
        "The fence was painted": {2},
        "Climbers love goats": {1, 3},
    }


async def test_unknown_banks_and_foreign_ids(pool: asyncpg.Pool) -> None:
    store = await provisioned_store(pool)
    with pytest.raises(UnknownBank):
        await full_text(store, "missing", "x")
    with pytest.raises(UnknownBank):
        await store.forget_memories("missing", [uuid.uuid4()])
    ids = await store.retain("bank", document("doc", "kept"))
    assert await store.forget_memories("bank", [uuid.uuid4()]) == 0
    assert await store.forget_document("bank", "other-doc") == 0
    assert await store.forget_memories("bank", ids) == 1
    [summary] = await store.list_banks()
    assert (summary.memories, summary.documents) == (0, 0)
