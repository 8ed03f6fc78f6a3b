"""Tenant roles: provisioning gives each schema its own NOLOGIN owner, on real PostgreSQL."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg
import pytest
from helpers import call_error, in_process_client, unique

from mcp_server.config import Settings, load_settings
from mcp_server.db.pool import create_pool
from mcp_server.errors import Misconfigured
from mcp_server.memory import recall, retain
from mcp_server.store import Provisioner, TenantStore
from mcp_server.store.roles import UNPREPARED
from mcp_server.tenancy import tenant_role_name

pytestmark = pytest.mark.anyio


# What a session carries between transactions: its role and every setting a transaction sets.
SESSION_STATE = (
    "SELECT current_user, pg_catalog.current_setting('search_path') AS search_path,"
    " pg_catalog.current_setting('jit') AS jit, pg_catalog.current_setting('hnsw.ef_search', true) AS ef_search,"
    " pg_catalog.current_setting('max_parallel_workers_per_gather') AS parallel_workers"
)


async def provisioned(pool: asyncpg.Pool, *schemas: str) -> Provisioner:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    for schema in schemas:
        await provisioner.provision(schema)
    return provisioner


async def test_provisioning_creates_a_nologin_owner_and_shuts_out_public(pool: asyncpg.Pool) -> None:
    schema = unique("roles")
    await provisioned(pool, schema)
    role = tenant_role_name(schema)
    async with pool.acquire() as conn:
        attributes = await conn.fetchrow(
            "SELECT rolcanlogin, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolbypassrls"
            " FROM pg_catalog.pg_roles WHERE rolname = $1",
            role,
        )
        assert dict(attributes) == {
            "rolcanlogin": False,
            "rolsuper": False,
            "rolinherit": False,
            "rolcreaterole": False,
            "rolcreatedb": False,
            "rolbypassrls": False,
        }
        assert (
            await conn.fetchval(
                "SELECT nspowner::regrole::text FROM pg_catalog.pg_namespace WHERE nspname = $1", schema
            )
            == role
        )
        owners = await conn.fetch(
            "SELECT c.relname, c.relowner::regrole::text AS owner FROM pg_catalog.pg_class c"
            " WHERE c.relnamespace = $1::regnamespace",
            schema,
        )
        assert {"banks", "documents", "memories", "schema_migrations", "banks_id_seq"} <= {r["relname"] for r in owners}
        assert {r["owner"] for r in owners} == {role}
        # No grant to PUBLIC (grantee 0) on the schema or on anything in it.
        public_grants = await conn.fetchval(
            """
            SELECT count(*) FROM (
                SELECT (pg_catalog.aclexplode(nspacl)).grantee FROM pg_catalog.pg_namespace WHERE nspname = $1
                UNION ALL
                SELECT (pg_catalog.aclexplode(c.relacl)).grantee FROM pg_catalog.pg_class c
                WHERE c.relnamespace = $1::regnamespace AND c.relacl IS NOT NULL
            ) AS grants WHERE grantee = 0
            """,
            schema,
        )
        assert public_grants == 0
        for privilege in ("USAGE", "CREATE"):
            assert (
                await conn.fetchval("SELECT pg_catalog.has_schema_privilege('public', $1, $2)", schema, privilege)
                is False
            )


async def test_tenant_transactions_run_as_the_tenant_role(pool: asyncpg.Pool) -> None:
    schema = unique("roles")
    await provisioned(pool, schema)
    store = TenantStore(pool, schema)
    async with store.transaction() as conn:
        assert await conn.fetchval("SELECT current_user") == tenant_role_name(schema)
    async with pool.acquire() as conn:
        # SET LOCAL ends with the transaction: the pooled connection is the login role again.
        assert await conn.fetchval("SELECT current_user") != tenant_role_name(schema)


async def test_the_vector_schema_is_usable_but_not_changeable_by_tenant_roles(pool: asyncpg.Pool) -> None:
    schema = unique("roles")
    provisioner = await provisioned(pool, schema)
    assert provisioner.vector_schema == "bulkhead_ext"
    store = TenantStore(pool, schema)
    async with store.transaction() as conn:
        assert await conn.fetchval("SELECT '[1,2,3]'::bulkhead_ext.vector OPERATOR(bulkhead_ext.<->) '[1,2,4]'") == 1.0
    attempts = [
        "CREATE TABLE bulkhead_ext.planted (id integer)",
        "CREATE FUNCTION bulkhead_ext.planted() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        "CREATE OR REPLACE FUNCTION bulkhead_ext.l2_distance(bulkhead_ext.vector, bulkhead_ext.vector)"
        " RETURNS double precision LANGUAGE sql AS 'SELECT 0::double precision'",
        "ALTER EXTENSION vector UPDATE",
        "DROP EXTENSION vector CASCADE",
        "DROP TYPE bulkhead_ext.vector CASCADE",
        "ALTER SCHEMA bulkhead_ext RENAME TO planted",
    ]
    for statement in attempts:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with store.transaction() as conn:
                await conn.execute(statement)
    # Without a grant option, GRANT only warns; it must not have granted anything.
    async with store.transaction() as conn:
        await conn.execute("GRANT CREATE ON SCHEMA bulkhead_ext TO PUBLIC")
        for role in ("public", tenant_role_name(schema)):
            assert (
                await conn.fetchval("SELECT pg_catalog.has_schema_privilege($1, 'bulkhead_ext', 'CREATE')", role)
                is False
            )


async def test_a_schema_made_before_tenant_roles_is_handed_over(pool: asyncpg.Pool) -> None:
    schema = unique("legacy")
    await provisioned(pool, schema)
    async with pool.acquire() as conn:
        login = await conn.fetchval("SELECT current_user")
        # Put the schema back the way a version without tenant roles left it.
        await conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{login}"')
        for table in ("schema_migrations", "banks", "documents", "memories"):
            await conn.execute(f'ALTER TABLE "{schema}".{table} OWNER TO "{login}"')
    await provisioned(pool, schema)
    async with pool.acquire() as conn:
        owners = await conn.fetch(
            "SELECT nspowner::regrole::text AS owner FROM pg_catalog.pg_namespace WHERE nspname = $1"
            " UNION SELECT relowner::regrole::text FROM pg_catalog.pg_class WHERE relnamespace = $1::regnamespace",
            schema,
        )
    assert {r["owner"] for r in owners} == {tenant_role_name(schema)}


async def test_a_role_that_can_log_in_is_refused_as_a_tenant_role(pool: asyncpg.Pool) -> None:
    schema = unique("taken")
    async with pool.acquire() as conn:
        await conn.execute(f'CREATE ROLE "{tenant_role_name(schema)}" LOGIN')
    provisioner = await provisioned(pool)
    with pytest.raises(Misconfigured, match="not a plain NOLOGIN role"):
        await provisioner.provision(schema)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", schema) is None


async def test_a_tool_call_on_a_schema_that_cannot_be_prepared_is_one_sentence(pg_url: str, pool: asyncpg.Pool) -> None:
    schema = unique("unprepared")
    async with pool.acquire() as conn:
        await conn.execute(f'CREATE ROLE "{tenant_role_name(schema)}" LOGIN')
    async with in_process_client(pg_url, schema) as client:
        text = await call_error(client, "retain", content="Never stored.")
        assert text == f"Error executing tool retain: {UNPREPARED}"
        assert await call_error(client, "list_banks") == f"Error executing tool list_banks: {UNPREPARED}"


async def test_a_tenant_role_that_is_a_member_of_another_role_is_refused(pool: asyncpg.Pool) -> None:
    first, second = unique("first"), unique("second")
    provisioner = await provisioned(pool, first, second)
    async with pool.acquire() as conn:
        await conn.execute(f'GRANT "{tenant_role_name(second)}" TO "{tenant_role_name(first)}"')
    with pytest.raises(Misconfigured, match="member of other roles"):
        await Provisioner(pool).provision(first)
    assert provisioner.has_vector


async def test_the_public_schema_keeps_its_owner_and_grants(pg_url: str) -> None:
    """`public` is not Bulkhead's: only Bulkhead's tables in it belong to the tenant role."""
    database = unique("bh_public_db")
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        url = _with_path(pg_url, database)
        before = await _public_schema_state(url)
        pool = await create_pool(Settings(database_url=url, pool_min_size=0, pool_max_size=2))
        try:
            await provisioned(pool, "public", "other_tenant")
            await retain(
                TenantStore(pool, "public"),
                content="Only the default tenant may read this.",
                bank="default",
                max_content_bytes=1024,
            )
            owner, grants = await _public_schema_state(url)
            assert owner == before[0]
            # Only an entry for the tenant role may be added (none where PUBLIC may already create).
            assert before[1] <= grants and grants - before[1] <= {"bulkhead_t_public=UC"}
            async with pool.acquire() as conn:
                owners = await conn.fetch(
                    "SELECT relname, relowner::regrole::text AS owner FROM pg_catalog.pg_class"
                    " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
                )
            assert {r["relname"]: r["owner"] for r in owners} == dict.fromkeys(
                ["schema_migrations", "banks", "bank_counts", "documents", "embedder", "memories"], "bulkhead_t_public"
            )
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with TenantStore(pool, "other_tenant").transaction() as conn:
                    await conn.fetch("SELECT text FROM public.memories")
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


async def _public_schema_state(url: str) -> tuple[str, set[str]]:
    """The owner of `public` and its grants, each as `grantee=privileges` (PUBLIC's grantee is empty)."""
    conn = await asyncpg.connect(url)
    try:
        owner = await conn.fetchval(
            "SELECT nspowner::regrole::text FROM pg_catalog.pg_namespace WHERE nspname = 'public'"
        )
        acl = await conn.fetchval("SELECT nspacl::text[] FROM pg_catalog.pg_namespace WHERE nspname = 'public'")
        return owner, {entry.split("/")[0] for entry in acl or []}
    finally:
        await conn.close()


def _with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def _with_path(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


async def test_an_ordinary_login_role_with_createrole_provisions_and_serves(pg_url: str, pool: asyncpg.Pool) -> None:
    """No superuser: a CREATEROLE login creates tenant roles and takes them on (PostgreSQL 16+ ADMIN)."""
    await provisioned(pool)  # as the superuser: installs the extension and shares its schema
    login, password = unique("bh_login"), secrets.token_hex(12)
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"):
            pytest.skip("creating a login role for this test needs a superuser connection")
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"CREATE ROLE \"{login}\" LOGIN CREATEROLE PASSWORD '{password}'")
        await conn.execute(f'GRANT CREATE ON DATABASE "{database}" TO "{login}"')
    schema = unique("ordinary")
    ordinary = await create_pool(
        Settings(database_url=_with_user(pg_url, login, password), pool_min_size=0, pool_max_size=2)
    )
    try:
        provisioner = await provisioned(ordinary, schema)
        assert provisioner.has_vector
        store = TenantStore(ordinary, schema)
        stored = await retain(
            store,
            content="The ordinary login can store and find this.",
            bank="notes",
            max_content_bytes=1024,
        )
        found = await recall(store, query="ordinary login", bank="notes")
        assert [m.id for m in found.memories] == stored.memory_ids
        async with ordinary.acquire() as conn:
            assert await conn.fetchval("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user") is False
            owner = await conn.fetchval(
                "SELECT nspowner::regrole::text FROM pg_catalog.pg_namespace WHERE nspname = $1", schema
            )
            assert owner == tenant_role_name(schema)
        async with store.transaction() as conn:
            assert await conn.fetchval("SELECT current_user") == tenant_role_name(schema)
    finally:
        await ordinary.close()


async def test_a_login_without_createrole_uses_the_roles_an_operator_made(pg_url: str, pool: asyncpg.Pool) -> None:
    """The README's recipe for a login that may not create roles, and the message when it is not followed."""
    await provisioned(pool)
    login, password = unique("bh_plain"), secrets.token_hex(12)
    prepared, missing = unique("prepared"), unique("missing")
    role = tenant_role_name(prepared)
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"):
            pytest.skip("creating a login role for this test needs a superuser connection")
        await conn.execute(f"CREATE ROLE \"{login}\" LOGIN PASSWORD '{password}'")
        await conn.execute(f'CREATE ROLE "{role}" NOLOGIN NOINHERIT')
        await conn.execute(f'GRANT "{role}" TO "{login}"')
        await conn.execute(f'CREATE SCHEMA "{prepared}" AUTHORIZATION "{role}"')
    plain = await create_pool(
        Settings(database_url=_with_user(pg_url, login, password), pool_min_size=0, pool_max_size=2)
    )
    try:
        provisioner = await provisioned(plain, prepared)
        store = TenantStore(plain, prepared)
        await retain(
            store,
            content="Stored through a role the operator made.",
            bank="notes",
            max_content_bytes=1024,
        )
        assert [b.name for b in await store.list_banks()] == ["notes"]
        with pytest.raises(Misconfigured, match=r"may not create role .*CREATEROLE"):
            await provisioner.provision(missing)
    finally:
        await plain.close()


async def test_a_released_connection_carries_nothing_of_the_last_tenant(pg_url: str) -> None:
    """The pool skips asyncpg's reset query; every transaction's role and settings end with it."""
    settings = load_settings(_env_file=None, database_url=pg_url, pool_min_size=1, pool_max_size=1)
    single = await create_pool(settings)
    try:
        schema = unique("roles")
        await provisioned(single, schema)
        store = TenantStore(single, schema)
        async with single.acquire() as conn:
            before = await conn.fetchrow(SESSION_STATE)
        async with store.transaction() as conn:
            assert await conn.fetchval("SELECT current_user") == tenant_role_name(schema)
        with pytest.raises(ZeroDivisionError):
            async with store.transaction() as conn:
                await conn.fetchval("SELECT pg_catalog.pg_advisory_xact_lock(42)")
                raise ZeroDivisionError
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with store.transaction() as conn:
                await conn.fetchval("SELECT 1 / 0")
        with anyio.move_on_after(0.2):
            async with store.transaction() as conn:
                await conn.fetchval("SELECT pg_catalog.pg_sleep(5)")
        async with single.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchrow(SESSION_STATE) == before
            assert await conn.fetchval("SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        await single.close()
