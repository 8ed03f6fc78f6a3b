"""Per-tenant quotas: stored memories, stored bytes and tool calls per second."""

from __future__ import annotations

import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import asyncpg
import pytest
from helpers import call, call_error, server_env, stdio_client, unique
from helpers.http import HttpServer, http_server, mcp_client

from mcp_server.config import load_settings
from mcp_server.errors import Limited, Misconfigured
from mcp_server.store import NewDocument, Provisioner, StoreRegistry
from mcp_server.tenancy import TenantDirectory, TenantLimits, parse_key_file

pytestmark = pytest.mark.anyio


def note(document_id: str, *chunks: str) -> NewDocument:
    return NewDocument(
        document_id=document_id, chunks=list(chunks), context=None, tags=[], metadata={}, occurred_at=None
    )


def key_file(tmp: Path, text: str) -> Path:
    path = tmp / f"keys-{secrets.token_hex(4)}"
    path.write_text(text, encoding="utf-8")
    return path


def test_key_file_lines_may_override_limits_and_two_columns_stay_valid(tmp_path: Path) -> None:
    path = key_file(
        tmp_path,
        "# key schema [limits]\nk1 tenant_a\nk2 tenant_b max_memories=10 calls_per_second=0.5 burst=3\n"
        "k3 tenant_b max_bytes=2048\n",
    )
    assert [schema for _, schema in parse_key_file(path)] == ["tenant_a", "tenant_b", "tenant_b"]
    settings = load_settings(_env_file=None, tenant_key_file=path, tenant_max_memories=500, tenant_call_burst=7)
    directory = TenantDirectory.from_settings(settings)
    assert directory.limits_for("tenant_a") == TenantLimits.from_settings(settings)
    assert directory.limits_for("tenant_a").max_memories == 500
    assert directory.limits_for("tenant_b") == TenantLimits(
        max_memories=10, max_bytes=2048, calls_per_second=0.5, burst=3
    )
    for bad, reason in (
        ("k1 tenant_a memories=10", "only limits may follow"),
        ("k1 tenant_a max_memories=ten", "must be a number"),
        ("k1 tenant_a max_memories=-1", "0 (no limit) or more"),
        ("k1 tenant_a max_memories=1\nk2 tenant_a max_memories=2", "another max_memories"),
    ):
        with pytest.raises(Misconfigured, match=re.escape(reason)) as refused:
            TenantDirectory.from_settings(load_settings(_env_file=None, tenant_key_file=key_file(tmp_path, bad)))
        assert not re.search(r"\bk[12]\b", refused.value.message)


async def test_concurrent_retains_at_the_limit_never_exceed_it(pool: asyncpg.Pool) -> None:
    provisioner = Provisioner(pool)
    await provisioner.bootstrap()
    store = await StoreRegistry(pool, provisioner).for_schema(unique("quota"))
    limits = TenantLimits(max_memories=10, max_bytes=0)
    await store.retain("b", note("seed", "one", "two", "three"), limits=limits)
    stored, refused = [], []

    async def retain(number: int) -> None:
        try:
            stored.append(
                await store.retain(f"bank{number % 3}", note(f"d{number}", f"memory {number}"), limits=limits)
            )
        except Limited as exc:
            refused.append(exc.message)

    async with anyio.create_task_group() as group:
        for number in range(30):
            group.start_soon(retain, number)
    [summary_total] = [sum(b.memories for b in await store.list_banks())]
    assert (len(stored), len(refused), summary_total) == (7, 23, 10)
    assert refused[0] == (
        "this tenant may keep at most 10 memories and holds 10, too many to add 1; forget some first."
    )
    # Replacing a document counts what the schema holds without it; a refusal changes nothing.
    async with store.transaction() as conn:
        held = await conn.fetchval(
            store.memory_sql.names.render("SELECT sum(octet_length(text)) FROM {schema}.memories")
        )
    room = TenantLimits(max_bytes=held - len("onetwothree") + 50)
    with pytest.raises(Limited, match=f"at most {room.max_bytes} bytes of memory text"):
        await store.retain("b", note("seed", "x" * 51), limits=room)
    assert sum(b.memories for b in await store.list_banks()) == 10
    assert len(await store.retain("b", note("seed", "x" * 50), limits=room)) == 1
    assert sum(b.memories for b in await store.list_banks()) == 8


@dataclass
class Tenants:
    server: HttpServer
    slow: str
    small: str
    free: str


@pytest.fixture(scope="module")
def tenants(pg_url: str) -> Iterator[Tenants]:
    slow, small, free = (secrets.token_urlsafe(16) for _ in range(3))
    with tempfile.TemporaryDirectory() as folder:
        path = key_file(
            Path(folder),
            f"{slow} {unique('slow')} calls_per_second=0.001 burst=3\n"
            f"{small} {unique('small')} max_memories=2\n"
            f"{free} {unique('free')} calls_per_second=0\n",
        )
        with http_server(server_env(pg_url, tenant_key_file=str(path))) as server:
            yield Tenants(server, slow, small, free)


async def test_a_tenant_at_its_limit_is_refused_while_another_is_served(tenants: Tenants) -> None:
    url = tenants.server.url
    async with (
        mcp_client(url, tenants.slow) as slow,
        mcp_client(url, tenants.small) as small,
        mcp_client(url, tenants.free) as free,
    ):
        for _ in range(3):
            await call(slow, "list_banks")
        assert await call_error(slow, "list_banks") == (
            "Error executing tool list_banks: this tenant may make 0.001 tool calls a second (bursts of 3); "
            "wait a moment, then retry."
        )
        await call(small, "retain", content="first", bank="b", document_id="one")
        await call(small, "retain", content="second", bank="b", document_id="two")
        refused = await call_error(small, "retain", content="third", bank="b", document_id="three")
        assert refused == (
            "Error executing tool retain: this tenant may keep at most 2 memories and holds 2, too many to add 1; "
            "forget some first."
        )
        # The other tenant is served in full while both are refused.
        for number in range(60):
            await call(free, "retain", content=f"memory {number}", bank="b")
        assert (await call(free, "list_banks"))["banks"][0]["memories"] == 60
        assert "(bursts of 3)" in await call_error(slow, "recall", query="x")
        assert (await call(small, "list_banks"))["banks"][0]["memories"] == 2
    log = tenants.server.log()
    assert len(re.findall(r"tool call tenant=slow_\S+ tool=\S+ bank=\S+ outcome=limited", log)) == 2
    assert len(re.findall(r"tool call tenant=small_\S+ tool=retain bank=b outcome=limited", log)) == 1
    assert "tenant=free" in log and not re.search(r"tenant=free\S+ .*outcome=(?!ok)", log)


async def test_a_raised_limit_takes_effect_on_restart(pg_url: str, tmp_path: Path) -> None:
    key, schema = secrets.token_urlsafe(16), unique("raised")
    path = key_file(tmp_path, f"{key} {schema} max_memories=1\n")
    env = server_env(pg_url, tenant_key_file=str(path), api_key=key)
    async with stdio_client(env) as client:
        await call(client, "retain", content="first", bank="b")
        assert "at most 1 memories" in await call_error(client, "retain", content="second", bank="b")
    path.write_text(f"{key} {schema} max_memories=3\n", encoding="utf-8")
    async with stdio_client(env) as client:
        await call(client, "retain", content="second", bank="b")
        await call(client, "retain", content="third", bank="b")
        assert "at most 3 memories" in await call_error(client, "retain", content="fourth", bank="b")
