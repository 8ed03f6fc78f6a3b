"""Dashboard sessions below the pages: key bindings in the key map, the session rows' expiry,
and the session schema out of every tenant role's reach."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import asyncpg
import pytest
from helpers import unique

from mcp_server.errors import InvalidInput
from mcp_server.store import Provisioner, TenantStore
from mcp_server.store.sessions import SessionRow, SessionStore
from mcp_server.tenancy import KeyMap, digest_key, key_binding, validate_schema_name

pytestmark = pytest.mark.anyio


def test_a_binding_resolves_only_with_its_key_mapped_and_its_own_nonce() -> None:
    nonce, other = os.urandom(32), os.urandom(32)
    binding = key_binding(digest_key("key-a"), nonce)
    both = KeyMap([(digest_key("key-a"), "tenant_a"), (digest_key("key-b"), "tenant_b")])
    assert both.resolve_binding(binding, nonce).schema == "tenant_a"  # type: ignore[union-attr]
    assert both.resolve_binding(binding, other) is None
    assert both.resolve_binding(key_binding(digest_key("key-c"), nonce), nonce) is None
    # The key taken out of the map (its schema still served by another key): the binding is dead.
    assert KeyMap([(digest_key("key-b"), "tenant_a")]).resolve_binding(binding, nonce) is None
    # Without the nonce, the binding tells nothing of the key: it is not its digest or any hash of it alone.
    assert binding not in (digest_key("key-a"), key_binding(digest_key("key-a"), b""))


@pytest.mark.parametrize(
    ("name", "reason"),
    [("bulkhead_web", "reserved by Bulkhead"), ("bulkhead_ext", "reserved for the vector extension")],
)
def test_bulkheads_own_schemas_cannot_be_tenants(name: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        validate_schema_name(name)


async def test_sessions_expire_when_idle_and_at_their_lifetime(pool: asyncpg.Pool) -> None:
    sessions = SessionStore(pool)
    row = SessionRow(schema="tenant_x", key_binding=os.urandom(32), csrf_secret=os.urandom(32))
    idle, live, short = os.urandom(32), os.urandom(32), os.urandom(32)
    await sessions.create(idle, row, idle=timedelta(0), lifetime=timedelta(hours=1))
    await sessions.create(live, row, idle=timedelta(minutes=5), lifetime=timedelta(hours=1))
    await sessions.create(short, row, idle=timedelta(minutes=5), lifetime=timedelta(0))
    assert await sessions.touch(idle, idle=timedelta(minutes=5)) is None
    assert await sessions.touch(short, idle=timedelta(minutes=5)) is None
    assert await sessions.touch(live, idle=timedelta(minutes=5)) == row
    async with pool.acquire() as conn:
        # Touching renews the idle expiry, never past the absolute one.
        renewed = await conn.fetchrow(
            "SELECT idle_expires_at <= expires_at AS bounded FROM bulkhead_web.sessions WHERE id_digest = $1", live
        )
        assert renewed["bounded"]
    # A new session sweeps the expired ones away.
    await sessions.create(os.urandom(32), row, idle=timedelta(minutes=5), lifetime=timedelta(hours=1))
    async with pool.acquire() as conn:
        left = await conn.fetch("SELECT id_digest FROM bulkhead_web.sessions WHERE id_digest = ANY($1)", [idle, short])
    assert left == []


async def test_no_tenant_role_can_reach_the_session_schema(pool: asyncpg.Pool) -> None:
    schema = unique("web_reach")
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    await provisioner.provision(schema)
    sessions = SessionStore(pool)
    await sessions.create(
        os.urandom(32),
        SessionRow(schema=schema, key_binding=os.urandom(32), csrf_secret=os.urandom(32)),
        idle=timedelta(minutes=5),
        lifetime=timedelta(hours=1),
    )
    for statement in (
        "SELECT * FROM bulkhead_web.sessions",
        "DELETE FROM bulkhead_web.sessions",
        "UPDATE bulkhead_web.sessions SET schema_name = 'x'",
        "CREATE TABLE bulkhead_web.planted (id integer)",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with TenantStore(pool, schema).transaction() as conn:
                await conn.execute(statement)


async def test_beyond_loopback_the_cookie_is_secure_and_host_prefixed(pg_url: str) -> None:
    import httpx2

    from mcp_server.config import load_settings
    from mcp_server.runtime import open_runtime
    from mcp_server.tenancy import TenantDirectory
    from mcp_server.web.app import build_dashboard

    key, schema = unique("key"), unique("web_secure")
    settings = load_settings(_env_file=None, database_url=pg_url, tenant_key_map=f"{key}:{schema}", embedder="none")
    async with open_runtime(settings, TenantDirectory.from_settings(settings)) as runtime:
        app = build_dashboard(runtime, host="0.0.0.0", public_url="https://memory.example.com")
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="https://memory.example.com") as client:
            reply = await client.post("/sign-in", data={"key": key}, headers={"Sec-Fetch-Site": "same-origin"})
            cookie = reply.headers["set-cookie"]
            assert re.fullmatch(
                r"__Host-bulkhead_session=[A-Za-z0-9_-]{43}; HttpOnly; Path=/; SameSite=strict; Secure", cookie
            ), cookie
            # Served beyond loopback, any host name is answered (auth guards it there).
            assert (await client.get("/", headers={"Host": "other.example"})).status_code == 200
