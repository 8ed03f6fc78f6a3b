"""Proof in the database: PostgreSQL itself keeps tenants apart, and no statement leans on search_path."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest
from helpers import full_text, unique

from mcp_server.memory.transfer import Importer, export_schema
from mcp_server.store import (
    NewDocument,
    Provisioner,
    SearchRequest,
    TenantStore,
    UnknownBank,
    VectorRewrite,
    browse,
    recorded_embedder,
    register_vector_codec,
    stored_dimension,
)
from mcp_server.store.sessions import SessionRow, SessionStore
from mcp_server.store.sql import SchemaNames
from mcp_server.store.sql import sessions as session_sql
from mcp_server.store.sql.groups import render_all
from mcp_server.store.sql.memories import MemorySQL
from mcp_server.store.sql.migrations import MigrationSQL
from mcp_server.store.sql.roles import RoleSQL
from mcp_server.store.sql.search import SearchSQL
from mcp_server.store.tenants import drop_schema
from mcp_server.tenancy import TenantLimits, tenant_role_name

pytestmark = pytest.mark.anyio


def document(document_id: str, *chunks: str, tags: tuple[str, ...] = (), when: datetime | None = None) -> NewDocument:
    return NewDocument(
        document_id=document_id, chunks=chunks, context="ctx", tags=tags, metadata={"k": [1, "v"]}, occurred_at=when
    )


async def snapshot(pool: asyncpg.Pool, schema: str) -> list[tuple]:
    """Every row of a schema's banks, their counts, documents and memories, as the login role sees them."""
    async with pool.acquire() as conn:
        rows = []
        for table in ("banks", "bank_counts", "documents", "embedder", "memories"):
            rows += [(table, *r.values()) for r in await conn.fetch(f'SELECT * FROM "{schema}".{table} ORDER BY 1, 2')]
        return rows


async def two_tenants(pool: asyncpg.Pool) -> tuple[str, str]:
    a, b = unique("iso_a"), unique("iso_b")
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    for schema in (a, b):
        await provisioner.provision(schema)
        await TenantStore(pool, schema).retain("notes", document("doc-1", f"A secret of {schema}.", tags=("x",)))
    return a, b


async def test_every_table_of_another_tenant_refuses_a_tenant_role(pool: asyncpg.Pool) -> None:
    a, b = await two_tenants(pool)
    before = await snapshot(pool, b)
    async with pool.acquire() as conn:
        relations = await conn.fetch(
            "SELECT c.relname, c.relkind::text AS relkind, (SELECT a.attname FROM pg_catalog.pg_attribute a"
            "   WHERE a.attrelid = c.oid AND a.attnum = 1) AS first_column"
            " FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace",
            b,
        )
    tables = [r for r in relations if r["relkind"] == "r"]
    sequences = [r for r in relations if r["relkind"] == "S"]
    indexes = [r for r in relations if r["relkind"] == "i"]
    assert {t["relname"] for t in tables} == {
        "banks",
        "bank_counts",
        "documents",
        "embedder",
        "memories",
        "schema_migrations",
    }
    assert sequences and indexes
    statements = [f'CREATE TABLE "{b}".planted (id integer)', f'CREATE VIEW "{b}".planted AS SELECT 1 AS one']
    for t in tables:
        name, column = f'"{b}"."{t["relname"]}"', f'"{t["first_column"]}"'
        statements += [
            f"SELECT * FROM {name}",
            f"SELECT count(*) FROM {name}",
            f"INSERT INTO {name} DEFAULT VALUES",
            f"UPDATE {name} SET {column} = {column}",
            f"DELETE FROM {name}",
            f"TRUNCATE {name}",
            f"ALTER TABLE {name} ADD COLUMN planted integer",
            f"ALTER TABLE {name} OWNER TO CURRENT_USER",
            f"DROP TABLE {name} CASCADE",
            f"LOCK TABLE {name} IN ACCESS SHARE MODE",
            f"COPY {name} TO STDOUT",
        ]
    for s in sequences:
        name = f'"{b}"."{s["relname"]}"'
        statements += [f"SELECT nextval('{name}')", f"SELECT setval('{name}', 1)", f"SELECT last_value FROM {name}"]
    statements += [f'DROP INDEX "{b}"."{i["relname"]}"' for i in indexes]
    statements += [f'DROP SCHEMA "{b}" CASCADE', f'ALTER SCHEMA "{b}" RENAME TO planted']
    for statement in statements:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with TenantStore(pool, a).transaction() as conn:
                await conn.execute(statement)
    assert await snapshot(pool, b) == before


async def test_a_store_whose_sql_names_another_schema_is_refused(pool: asyncpg.Pool) -> None:
    """A bug that renders tenant B's statements inside tenant A's transaction reaches nothing."""
    a, b = await two_tenants(pool)
    before = await snapshot(pool, b)
    confused = TenantStore(pool, a)
    names_b = SchemaNames(b)
    # Every statement names B's tables; the transaction still begins as A's role.
    confused.memory_sql, confused.search_sql = MemorySQL(names_b), SearchSQL(names_b)
    roles_b, migrations_b = RoleSQL(names_b), MigrationSQL(names_b)
    calls = [
        confused.retain("notes", document("doc-1", "Overwrite B.")),
        confused.retain("fresh", document("doc-2", "Plant in B.")),
        full_text(confused, "notes", "secret"),
        confused.search(SearchRequest(bank="notes", ranked_query=None)),
        confused.forget_memories("notes", [uuid.uuid4()]),
        confused.forget_document("notes", "doc-1"),
        confused.find_identical("notes", document("doc-1", "Is B's note here?"), same_id=False),
        confused.forget_bank("notes"),
        confused.list_banks(),
    ]
    for pending in calls:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pending
    # The provisioning statements that name B's tables are refused under A's role too. (Handing
    # B's schema to B's role is not among them: PostgreSQL skips an ALTER OWNER that changes nothing.)
    provisioning = [
        (migrations_b.create_migrations_table, ()),
        (migrations_b.applied_versions, ()),
        (migrations_b.record_version, (999, "planted")),
        (roles_b.adopt_tables, ()),
        (roles_b.revoke_schema_from_public, ()),
        (roles_b.share_schema_with_role, ()),
    ]
    for statement, args in provisioning:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with TenantStore(pool, a).transaction() as conn:
                await conn.execute(statement, *args)
    assert await snapshot(pool, b) == before


async def test_every_statement_runs_with_an_empty_search_path(pg_url: str) -> None:
    """search_path names an empty schema: an unqualified name would fail there or land in it."""
    empty, schema = unique("empty_path"), unique("qualified")
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE SCHEMA "{empty}"')
    succeeded: list[str] = []

    def record(query: asyncpg.connection.LoggedQuery) -> None:
        if query.exception is None:
            succeeded.append(query.query)

    async def init(conn: asyncpg.Connection) -> None:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        await register_vector_codec(conn)
        conn.add_query_logger(record)

    pool = await asyncpg.create_pool(pg_url, min_size=0, max_size=2, init=init, server_settings={"search_path": empty})
    try:
        provisioner = Provisioner(pool)
        await provisioner.bootstrap()
        # A connection opened before bootstrap made the extension (the first test of a run) has no vector codec.
        await pool.expire_connections()
        await provisioner.provision(schema)
        roles = RoleSQL(SchemaNames(schema))
        login = await admin.fetchval("SELECT current_user")
        # Hand the schema back to the login, as a version without tenant roles left it: adoption runs.
        await admin.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{login}"')
        await admin.execute(f'ALTER TABLE "{schema}".banks OWNER TO "{login}"')
        await Provisioner(pool).provision(schema)
        async with pool.acquire() as conn, conn.transaction():
            # Not needed by a superuser login, which may always SET ROLE, so run here directly.
            await conn.execute(roles.grant_role_to_login)
            await conn.execute(roles.share_schema_with_role)
        store = TenantStore(pool, schema, vector_schema=provisioner.vector_schema)
        march, may = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)
        first = await store.retain(
            "notes", document("d1", "Kiwis grow on vines.", "Vines need wire.", tags=("a",), when=march)
        )
        second = await store.retain(
            "notes",
            document("d2", "Wire fences keep goats out.", tags=("a", "b"), when=may),
            limits=TenantLimits(max_memories=100, max_bytes=10_000),
        )
        again = await store.find_identical(
            "notes", document("d9", "Wire fences keep goats out.", tags=("a", "b"), when=may), same_id=False
        )
        assert again is not None and (again.document_id, again.memory_ids) == ("d2", second)
        twice = document("d2", "Wire fences keep goats out.", tags=("a", "b"), when=may)
        kept = await store.retain_once("notes", twice, same_id=True)
        assert kept.already_stored and kept.memory_ids == second
        await store.retain("spare", document("d1", "A bank to delete whole."))
        assert await store.forget_bank("spare") == 1
        found = await full_text(store, "notes", "wire", tags=["a"])
        assert {m.id for m in found} == {first[1], second[0]}
        windowed = await full_text(store, "notes", "wire", since=may)
        assert [m.id for m in windowed] == second
        assert [m.metadata for m in windowed] == [{"k": [1, "v"]}]
        assert await store.search(SearchRequest(bank="notes", ranked_query=None)) == []
        with pytest.raises(UnknownBank):
            await store.search(SearchRequest(bank="elsewhere", ranked_query=None))
        assert await store.forget_memories("notes", [first[0]]) == 1
        assert await store.forget_memories("notes", first) == 1  # the document is now empty and goes too
        assert await store.forget_document("notes", "d2") == 1
        [summary] = await store.list_banks()
        assert (summary.name, summary.memories, summary.documents) == ("notes", 0, 0)
        # The dashboard's reads, a whole-bank forget, and its sessions (in Bulkhead's own schema).
        kept = await store.retain("shelf", document("d4", "Shelf one.", "Shelf two.", tags=("s",), when=may))
        [shelf] = [b for b in await browse.bank_stats(store) if b.name == "shelf"]
        assert (shelf.memories, shelf.documents) == (2, 1)
        assert shelf.bytes == len("Shelf one.Shelf two.") + 2 * len("ctx")
        assert await browse.one_bank_stats(store, "shelf") == replace(shelf, bytes=None)
        newest = await browse.page(store, browse.PageQuery(bank="shelf", text="shelf", tags=("s",), since=march))
        assert [m.id for m in newest] == kept[::-1]
        after = newest[0]
        by_time = browse.PageQuery(
            bank="shelf", order="occurred", after_seq=after.seq, after_when=after.occurred_at, until=may
        )
        assert [m.id for m in await browse.page(store, by_time)] == [kept[0]]
        assert (await browse.memory(store, "shelf", kept[0])).chunk_index == 0
        assert [m.id for m in await browse.memories(store, "shelf", kept)] == kept[::-1]
        assert await browse.document_size(store, "shelf", "d4") == 2
        assert [d.memory.id async for d in browse.export(store, "shelf", batch=1)] == kept
        assert await store.forget_bank("shelf") == 2
        sessions = SessionStore(pool)
        row = SessionRow(schema=schema, key_binding=b"k" * 32, csrf_secret=b"c" * 32)
        await sessions.create(b"s" * 32, row, idle=timedelta(minutes=1), lifetime=timedelta(hours=1))
        assert await sessions.touch(b"s" * 32, idle=timedelta(minutes=1)) == row
        await sessions.delete(b"s" * 32)
        assert await sessions.touch(b"s" * 32, idle=timedelta(minutes=1)) is None
        async with store.transaction() as conn:
            assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".documents') == 0
        # Vectors: retain with embeddings, hybrid search picking by rarer words, then a reembed.
        vectors = [np.eye(384, dtype=np.float32)[i] for i in range(2)]
        # Far from roomy limits: the first checks them exactly (the store last found its schema
        # crowded), the second the shared way, its lock taken as the transaction opens.
        roomy = TenantLimits(max_memories=1_000_000, max_bytes=1 << 30)
        await store.retain("notes", document("d3", "Goats climb."), None, limits=roomy)
        # Replacing a document: its old memories deleted, then the new ones inserted.
        await store.retain("notes", document("d3", "Goats climb the wire.", "Kiwis again."), vectors, limits=roomy)
        await store.retain("spare", document("d5", "Goats again."), vectors[:1])
        await store.retain("spare", document("d5", "Goats once more."), None)
        assert await store.forget_bank("spare") == 1
        async with store.transaction() as conn:
            # Statistics make every word here common at a threshold of 0 rows: candidates are picked
            # by the pruned query.
            await conn.execute(f'ANALYZE "{schema}".memories')
        hybrid = await store.search(
            SearchRequest(
                bank="notes",
                ranked_query="goats | climb | wire",
                vector=vectors[0],
                per_leg=5,
                neighbour_window=timedelta(hours=1),
                words="goats climb wire",
                common_word_rows=0,
            )
        )
        assert {c.memory.text for c in hybrid} == {"Goats climb the wire.", "Kiwis again."}
        assert await stored_dimension(store) == 384
        assert await recorded_embedder(store, "the unit vectors") == "the unit vectors"
        rewrite = VectorRewrite(store, 8, "eight ones")
        assert await rewrite.begin() == 2
        batch = await rewrite.batch_after(0, 10)
        await rewrite.write([seq for seq, _ in batch], [np.ones(8, dtype=np.float32)] * len(batch))
        await rewrite.finish()
        assert await stored_dimension(store) == 8
        assert await recorded_embedder(store, "the unit vectors") == "eight ones"
        rendered = render_all(SchemaNames(schema, vector_schema=provisioner.vector_schema, embedding_dim=8))
        # The search statements run with named parameters turned into numbered ones.
        compiled = {
            "SearchSQL.search_hybrid": store.search_sql.hybrid.text,
            "SearchSQL.search_lexical": store.search_sql.lexical.text,
            "BrowseSQL.page_by_retained": store.browse_sql.by_retained.text,
            "BrowseSQL.page_by_occurred": store.browse_sql.by_occurred.text,
            # Sent with the statements that open a transaction, in one string.
            "MemorySQL.quota_lock_opening": store.begin_quota["exclusive"],
            "MemorySQL.quota_lock_shared_opening": store.begin_quota["shared"],
        }
        # A tenant as a whole: export (with and without vectors), import over itself, drop (last).
        with_vectors, without = io.StringIO(), io.StringIO()
        assert await export_schema(store, with_vectors, vectors=True) == 2
        assert await export_schema(store, without, bank="notes") == 2
        exported = [json.loads(line) for line in with_vectors.getvalue().splitlines()]
        assert [r["type"] for r in exported] == ["header", "bank", "document", "memory", "memory"]
        assert all(len(r["embedding"]) == 8 for r in exported if r["type"] == "memory")
        assert "embedding" not in without.getvalue()
        assert await Importer(store, embedder=None, replace=True).run(with_vectors.getvalue().splitlines()) == [
            ("notes", 2)
        ]
        lexical = TenantStore(pool, schema, vector_schema=None)
        assert await Importer(lexical, embedder=None, replace=True).run(without.getvalue().splitlines()) == [
            ("notes", 2)
        ]
        # Every migration file was applied under the same search path.
        applied = await admin.fetch(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version')
        assert provisioner.has_vector
        assert [r["version"] for r in applied] == [m.version for m in provisioner.migrations]
        leaked = await admin.fetchval(
            "SELECT (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = $1::regnamespace)"
            " + (SELECT count(*) FROM pg_catalog.pg_proc WHERE pronamespace = $1::regnamespace)"
            " + (SELECT count(*) FROM pg_catalog.pg_type WHERE typnamespace = $1::regnamespace)",
            empty,
        )
        assert leaked == 0
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = $1::regnamespace"
                " AND relowner <> $2::regrole",
                schema,
                tenant_role_name(schema),
            )
            == 0
        )
        await drop_schema(pool, schema, protected=["public"])
        assert await admin.fetchval("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1", schema) == 0
        rendered |= {f"sessions.{name}": text for name, text in session_sql.STATEMENTS.items()}
        missing = [name for name, text in rendered.items() if compiled.get(name, text) not in succeeded]
        assert missing == [], f"statements never run (add them to this test): {missing}"
    finally:
        await pool.close()
        await admin.close()
