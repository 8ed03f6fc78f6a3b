"""The `bulkhead` command: migrate, smoke, and the embedded PostgreSQL shared by two processes."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from helpers import call, run_bulkhead, server_env, stdio_client, unique

from mcp_server.tenancy import tenant_role_name

pytestmark = pytest.mark.anyio


async def test_migrate_all_provisions_default_and_every_tenant_schema(pg_url: str) -> None:
    schemas = [unique("m"), unique("m"), unique("m")]
    key_map = f"k1:{schemas[1]};k2:{schemas[2]};k3:{schemas[2]}"
    result = run_bulkhead("migrate", "--all", env=server_env(pg_url, tenant_key_map=key_map, default_schema=schemas[0]))
    assert result.returncode == 0, result.stderr
    assert "k1" not in result.stderr and "k2" not in result.stderr
    conn = await asyncpg.connect(pg_url)
    try:
        for schema in schemas:
            assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') >= 1
            owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema)
            assert owner == tenant_role_name(schema)
    finally:
        await conn.close()


def test_smoke_runs_green(pg_url: str) -> None:
    result = run_bulkhead("smoke", env=server_env(pg_url, default_schema=unique("smoke")))
    assert result.returncode == 0, result.stderr
    assert "[retain]" in result.stdout and "[recall]" in result.stdout and "[reflect]" in result.stdout
    assert result.stdout.strip().endswith("smoke: ok")


async def test_two_processes_share_one_embedded_data_folder(tmp_path: Path) -> None:
    """As when two agent hosts launch Bulkhead side by side, each with its own key."""
    schema_a, schema_b = unique("ea"), unique("eb")
    key_map = f"key-a:{schema_a};key-b:{schema_b}"
    common = {"data_dir": str(tmp_path / "data"), "tenant_key_map": key_map}
    env_a = server_env(None, api_key="key-a", **common)
    env_b = server_env(None, api_key="key-b", **common)
    async with stdio_client(env_b) as b:
        async with stdio_client(env_a) as a:
            mine = await call(a, "retain", content="A's note on the embedded database.", bank="notes")
            theirs = await call(b, "retain", content="B's note on the embedded database.", bank="notes")
            assert [m["id"] for m in (await call(a, "recall", query="embedded note", bank="notes"))["memories"]] == (
                mine["memory_ids"]
            )
        # A has exited; B's database is still there and still works.
        recalled = await call(b, "recall", query="embedded note", bank="notes")
        assert [m["id"] for m in recalled["memories"]] == theirs["memory_ids"]
        await call(b, "retain", content="B keeps working after A left.", bank="notes")
    # Both gone; a new process starts the database again and finds everything.
    async with stdio_client(env_a) as a:
        banks = await call(a, "list_banks")
        assert banks["banks"][0]["memories"] == 1
