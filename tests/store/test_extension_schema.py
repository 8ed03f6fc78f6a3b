"""A schema holding an extension is shared by every role: no key may make it one tenant's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from helpers import unique

from mcp_server.config import load_settings
from mcp_server.db.pool import create_pool
from mcp_server.errors import InvalidInput, Misconfigured
from mcp_server.runtime import open_runtime
from mcp_server.store import NewDocument, Provisioner, StoreRegistry, register_vector_codec
from mcp_server.store.roles import UNPREPARED
from mcp_server.tenancy import EXTENSION_SCHEMA, TenantDirectory, validate_schema_name

pytestmark = pytest.mark.anyio


def note(text: str) -> NewDocument:
    return NewDocument(document_id="d", chunks=[text], context=None, tags=[], metadata={}, occurred_at=None)


def test_the_extension_schema_is_refused_as_a_tenant_schema_at_start_up() -> None:
    with pytest.raises(InvalidInput, match="reserved for the vector extension"):
        validate_schema_name(EXTENSION_SCHEMA)
    for settings in (
        {"tenant_key_map": f"tenant-key:{EXTENSION_SCHEMA}"},
        {"tenant_key_map": "tenant-key:fine", "default_schema": EXTENSION_SCHEMA},
    ):
        with pytest.raises(Misconfigured, match="reserved for the vector extension") as refused:
            TenantDirectory.from_settings(load_settings(_env_file=None, **settings))
        assert "tenant-key" not in refused.value.message


@pytest.fixture
async def database_with_vector_in(pg_url: str) -> AsyncIterator[tuple[str, str]]:
    """A new database whose pgvector lives in a schema of the operator's choosing: (url, schema)."""
    name, schema = unique("extdb"), unique("vecs")
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}"))
    setup = await asyncpg.connect(url)
    await setup.execute(f'CREATE SCHEMA "{schema}"')
    await setup.execute(f'CREATE EXTENSION vector WITH SCHEMA "{schema}"')
    await setup.execute(f'CREATE EXTENSION citext WITH SCHEMA "{schema}"')
    await setup.close()
    try:
        yield url, schema
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_key_mapped_to_the_schema_holding_pgvector_stops_start_up(
    database_with_vector_in: tuple[str, str],
) -> None:
    url, schema = database_with_vector_in
    settings = load_settings(_env_file=None, database_url=url, tenant_key_map=f"k1:tenant_a;k2:{schema}")
    with pytest.raises(Misconfigured, match=f"schema {schema} holds the pgvector extension"):
        async with open_runtime(settings, TenantDirectory.from_settings(settings)):
            pass


async def test_a_schema_holding_an_extension_is_never_adopted(database_with_vector_in: tuple[str, str]) -> None:
    url, schema = database_with_vector_in
    settings = load_settings(_env_file=None, database_url=url, pool_min_size=0, pool_max_size=2)
    pool = await create_pool(settings, on_connect=register_vector_codec)
    try:
        provisioner = Provisioner(pool)
        await provisioner.bootstrap()
        assert provisioner.vector_schema == schema
        registry = StoreRegistry(pool, provisioner)
        with pytest.raises(Misconfigured) as refused:
            await registry.for_schema(schema)
        assert refused.value.message == UNPREPARED
        assert "citext" in (refused.value.detail or "") and "vector" in (refused.value.detail or "")
        async with pool.acquire() as conn:
            login = await conn.fetchval("SELECT current_user")
            assert (
                await conn.fetchval(
                    "SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace WHERE nspname = $1",
                    schema,
                )
                == login
            )
            assert await conn.fetchval("SELECT pg_catalog.has_schema_privilege('public', $1, 'USAGE')", schema)
        # Every other tenant keeps working with vectors from that schema.
        store = await registry.for_schema(unique("tenant"))
        assert store.vector_schema == schema
        assert len(await store.retain("b", note("still served"), [[1.0] + [0.0] * 383])) == 1
    finally:
        await pool.close()
