"""A tenant role cannot leave temporary objects on the connections every tenant shares."""

from __future__ import annotations

import asyncpg
import pytest
from helpers import unique

from mcp_server.store import Provisioner, StoreRegistry

pytestmark = pytest.mark.anyio


async def test_a_tenant_role_may_not_create_temporary_tables(pool: asyncpg.Pool) -> None:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    store = await StoreRegistry(pool, provisioner).for_schema(unique("temp"))
    for statement in (
        "CREATE TEMPORARY TABLE planted (secret text)",
        "CREATE TEMPORARY SEQUENCE planted_seq",
        "CREATE TEMPORARY VIEW planted_view AS SELECT 1 AS one",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with store.transaction() as conn:
                await conn.execute(statement)
    async with pool.acquire() as conn:
        assert not await conn.fetchval(
            "SELECT pg_catalog.has_database_privilege('public', pg_catalog.current_database(), 'TEMPORARY')"
        )
