"""Three stateless HTTP replicas on one PostgreSQL through PgBouncer, a client spreading calls.

A retain through one replica is recalled through another at once; a replica killed with SIGKILL
in the middle of a load loses no acknowledged retain while the other two keep serving; tenants
stay apart across replicas. The client speaks raw JSON-RPC over streamable HTTP, one request per
call (stateless mode needs no session), so a dead replica is just a refused connection.
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from contextlib import ExitStack

import anyio
import httpx2
import pytest
from helpers import connect, server_env, unique
from helpers.http import HttpServer, http_server, tool_call
from helpers.pgbouncer import PgBouncer

pytestmark = pytest.mark.anyio

WORKERS = 6
TENANTS = 3


@pytest.fixture(scope="module")
def replicas(pg_url: str) -> Iterator[tuple[list[HttpServer], list[str], list[str]]]:
    bouncer = PgBouncer(pg_url, pool_size=10)
    bouncer.start()
    keys = [unique("key") for _ in range(TENANTS)]
    schemas = [unique("rep") for _ in range(TENANTS)]
    env = server_env(
        bouncer.url,
        database_pooler="transaction",
        http_stateless="true",
        tenant_key_map=";".join(f"{k}:{s}" for k, s in zip(keys, schemas, strict=True)),
        pool_max_size="4",
    )
    try:
        with ExitStack() as stack:
            servers = [stack.enter_context(http_server(env)) for _ in range(3)]
            yield servers, keys, schemas
    finally:
        bouncer.close()


async def test_a_retain_through_one_replica_is_recalled_through_another(
    replicas: tuple[list[HttpServer], list[str], list[str]],
) -> None:
    servers, keys, _ = replicas
    async with httpx2.AsyncClient(timeout=60) as http:
        for i, server in enumerate(servers):
            other = servers[(i + 1) % 3]
            text = f"Replica {i} stored the ferry timetable for pier {i}."
            retained = await tool_call(http, server.url, keys[0], "retain", content=text, bank="spread")
            recalled = await tool_call(http, other.url, keys[0], "recall", query=f"ferry pier {i}", bank="spread")
            assert retained["memory_ids"][0] in [m["id"] for m in recalled["memories"]]
            # Another tenant, through the third replica, finds nothing: its bank of that name is empty.
            foreign = await tool_call(http, servers[(i + 2) % 3].url, keys[1], "recall", query="ferry", bank="spread")
            assert foreign == {"bank": "spread", "memories": [], "truncated": False}


async def test_sigkill_of_a_replica_mid_load_loses_no_acknowledged_retain(
    pg_url: str, replicas: tuple[list[HttpServer], list[str], list[str]]
) -> None:
    servers, keys, schemas = replicas
    victim = servers[2]
    acknowledged: dict[int, list[tuple[str, str]]] = {t: [] for t in range(TENANTS)}
    after_kill = {"ok": 0, "errors_on_survivors": 0}
    killed = anyio.Event()
    counter = itertools.count()

    async def worker(number: int, http: httpx2.AsyncClient) -> None:
        tenant = number % TENANTS
        for step in range(40):
            target = servers[(number + step) % 3]
            n = next(counter)
            text = f"tenant {tenant} load entry {n}"
            try:
                retained = await tool_call(http, target.url, keys[tenant], "retain", content=text, bank="load")
            except (httpx2.TransportError, httpx2.HTTPStatusError):
                # Only the killed replica may fail, and only around its death.
                if target is not victim:
                    after_kill["errors_on_survivors"] += 1
                continue
            acknowledged[tenant].append((retained["memory_ids"][0], text))
            if killed.is_set() and target is not victim:
                after_kill["ok"] += 1
            if n == 60:
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait()
                killed.set()

    async with httpx2.AsyncClient(timeout=60) as http, anyio.create_task_group() as group:
        for number in range(WORKERS):
            group.start_soon(worker, number, http)

    assert killed.is_set() and victim.process.returncode == -signal.SIGKILL
    assert after_kill["errors_on_survivors"] == 0
    assert after_kill["ok"] > 0
    conn = await connect(pg_url)
    try:
        for tenant, schema in enumerate(schemas):
            rows = await conn.fetch(
                f'SELECT m.id::text, m.text FROM "{schema}".memories m JOIN "{schema}".banks b ON b.id = m.bank_id'
                " WHERE b.name = 'load'"
            )
            stored = {(r["id"], r["text"]) for r in rows}
            assert set(acknowledged[tenant]) <= stored
            # Nothing of another tenant landed here.
            assert all(text.startswith(f"tenant {tenant} ") for _, text in stored)
    finally:
        await conn.close()
    # The survivors still answer, each for every tenant: every acknowledged retain is there (and
    # perhaps a few whose answer the kill cut off after they committed).
    async with httpx2.AsyncClient(timeout=60) as http:
        for server in servers[:2]:
            for tenant, key in enumerate(keys):
                banks = {
                    b["bank"]: b["memories"] for b in (await tool_call(http, server.url, key, "list_banks"))["banks"]
                }
                assert banks["load"] >= len(acknowledged[tenant]) > 0
