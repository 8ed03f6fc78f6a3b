"""Bulkhead behind PgBouncer in transaction mode: Debian's `pgbouncer` in front of the test PostgreSQL.

Each transaction may land on any server connection, so nothing may be set per connection and
no prepared statement may outlive its transaction. The whole stdio and HTTP tool suites also
run this way with `BULKHEAD_TEST_POOLER=pgbouncer` (see conftest); this file runs always.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import asyncpg
import httpx2
import pytest
from helpers import call, call_error, run_bulkhead, server_env, stdio_client, unique
from helpers.http import http_server, mcp_client
from helpers.pgbouncer import PgBouncer
from mcp import Client

from mcp_server.config import load_settings
from mcp_server.db.pool import create_pool
from mcp_server.store import Provisioner, TenantStore

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def bouncer(pg_url: str) -> Iterator[PgBouncer]:
    # One server connection per database and user: every client shares it, transaction by transaction.
    running = PgBouncer(pg_url, pool_size=2)
    running.start()
    yield running
    running.close()


def through(bouncer: PgBouncer, **settings: str) -> dict[str, str]:
    return server_env(bouncer.url, database_pooler="transaction", **settings)


async def test_settings_travel_with_each_transaction_not_the_connection(bouncer: PgBouncer) -> None:
    """A client that leaves a session setting behind on a shared server connection changes nothing."""
    settings = load_settings(_env_file=None, database_url=bouncer.url, database_pooler="transaction")
    pool = await create_pool(settings)
    careless = await asyncpg.connect(bouncer.url, statement_cache_size=0)
    try:
        provisioner = Provisioner(pool)
        await provisioner.bootstrap()
        schema = unique("bounced")
        await provisioner.provision(schema)
        store = TenantStore(pool, schema, vector_schema=provisioner.vector_schema)
        for _ in range(6):
            # Outside a transaction: the setting stays on whichever server connection ran it.
            await careless.execute(
                "SET search_path = pg_catalog, public; SET jit = on; SET hnsw.ef_search = 7;"
                " SET max_parallel_workers_per_gather = 2"
            )
            async with store.transaction() as conn:
                names = ("search_path", "jit", "hnsw.ef_search", "max_parallel_workers_per_gather")
                shown = [await conn.fetchval(f"SHOW {name}") for name in names]
                role = await conn.fetchval("SELECT current_user")
            assert shown == ['""', "off", "100", "0"]
            assert role == f"bulkhead_t_{schema}"
    finally:
        await careless.close()
        await pool.close()


async def test_stdio_tools_through_pgbouncer(bouncer: PgBouncer) -> None:
    env = through(bouncer, default_schema=unique("bstdio"))
    async with stdio_client(env) as client:
        retained = await call(
            client,
            "retain",
            content="The lighthouse keeper winds the clock every Sunday at dawn.",
            bank="notes",
            tags=["lighthouse"],
            metadata={"n": 1},
        )
        await call(client, "retain", content="Gulls nest on the north cliff in May.", bank="notes")
        recalled = await call(client, "recall", query="who winds the clock?", bank="notes", tags=["lighthouse"])
        assert [m["id"] for m in recalled["memories"]] == retained["memory_ids"]
        reflected = await call(client, "reflect", query="When is the clock wound?", bank="notes")
        assert reflected["citations"] == retained["memory_ids"]
        assert (await call(client, "list_banks"))["banks"][0]["memories"] == 2
        assert "bank" in await call_error(client, "recall", query="x", bank="bad bank!")
        forgotten = await call(client, "forget", bank="notes", memory_ids=retained["memory_ids"])
        assert forgotten["deleted"] == 1


async def test_http_tenants_stay_apart_through_pgbouncer(bouncer: PgBouncer) -> None:
    keys, schemas = [unique("k"), unique("k")], [unique("bh"), unique("bh")]
    key_map = ";".join(f"{k}:{s}" for k, s in zip(keys, schemas, strict=True))
    with http_server(through(bouncer, tenant_key_map=key_map)) as server:
        for mode in ("legacy", "auto", "sse"):
            async with mcp_client(server.url, keys[0], mode) as a, mcp_client(server.url, keys[1], mode) as b:
                mine = await call(a, "retain", content=f"A's secret harbour code for {mode}.", bank="shared")
                await call(b, "retain", content=f"B's own harbour note for {mode}.", bank="shared")

                async def recall_many(client: Client, results: list[list[str]], query: str) -> None:
                    found = await call(client, "recall", query=query, bank="shared")
                    results.append([m["text"] for m in found["memories"]])

                seen_a: list[list[str]] = []
                seen_b: list[list[str]] = []
                async with anyio.create_task_group() as group:
                    for _ in range(5):
                        group.start_soon(recall_many, a, seen_a, f"harbour {mode}")
                        group.start_soon(recall_many, b, seen_b, f"harbour {mode}")
                assert all(all(t.startswith("A's") for t in texts) and texts for texts in seen_a)
                assert all(all(t.startswith("B's") for t in texts) and texts for texts in seen_b)
                assert mine["memory_ids"]
        assert "prepared statement" not in server.log()


async def test_readyz_follows_the_database_and_calls_recover(pg_url: str) -> None:
    own = PgBouncer(pg_url, pool_size=2)
    own.start()
    try:
        with http_server(through(own, default_schema=unique("ready"))) as server:
            async with httpx2.AsyncClient(timeout=30) as http:
                assert (await http.get(f"{server.url}/readyz")).json() == {"status": "ready"}
                own.stop()
                down = await http.get(f"{server.url}/readyz")
                assert down.status_code == 503 and down.json()["status"] == "unavailable"
                assert (await http.get(f"{server.url}/healthz")).status_code == 200
                async with mcp_client(server.url, None) as client:
                    # The session opens without the database; the call says retry.
                    assert "retry" in await call_error(client, "list_banks")
                    own.start()
                    assert (await http.get(f"{server.url}/readyz")).status_code == 200
                    await call(client, "retain", content="Back after the pooler restarted.", bank="notes")
    finally:
        own.close()


async def test_export_and_import_through_pgbouncer(bouncer: PgBouncer) -> None:
    source, copy = unique("bsrc"), unique("bcopy")
    async with stdio_client(through(bouncer, default_schema=source)) as client:
        for n in range(30):
            await call(client, "retain", content=f"Entry {n} of the tide log: water at {n} metres.", bank="tides")
    exported = run_bulkhead("export", "--schema", source, "--vectors", env=through(bouncer))
    assert exported.returncode == 0, exported.stderr
    imported = run_bulkhead("import", "--schema", copy, env=through(bouncer), stdin=exported.stdout)
    assert imported.returncode == 0, imported.stderr
    again = run_bulkhead("export", "--schema", copy, "--vectors", env=through(bouncer))
    assert again.returncode == 0, again.stderr
    original = [json.loads(line) for line in exported.stdout.splitlines()][1:]
    assert [json.loads(line) for line in again.stdout.splitlines()][1:] == original
    assert len([r for r in original if r["type"] == "memory"]) == 30
