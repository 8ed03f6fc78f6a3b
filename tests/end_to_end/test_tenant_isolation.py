"""Two tenants on one server setup: each sees only its own banks and memories."""

from __future__ import annotations

import json

import asyncpg
import pytest
from helpers import call, server_env, stdio_client, unique

pytestmark = pytest.mark.anyio


@pytest.fixture
def tenants(pg_url: str) -> dict[str, object]:
    schema_a, schema_b, default = unique("ta"), unique("tb"), unique("td")
    key_a, key_b = unique("key-a"), unique("key-b")
    key_map = f"{key_a}:{schema_a};{key_b}:{schema_b}"
    return {
        "a": server_env(pg_url, tenant_key_map=key_map, api_key=key_a, default_schema=default),
        "b": server_env(pg_url, tenant_key_map=key_map, api_key=key_b, default_schema=default),
        "off": server_env(pg_url, tenant_key_map=key_map, auth_disabled="true", default_schema=default),
        "schemas": (schema_a, schema_b, default),
    }


async def test_same_bank_name_different_tenants(tenants: dict) -> None:
    async with stdio_client(tenants["a"]) as a, stdio_client(tenants["b"]) as b:
        mine = await call(a, "retain", content="Project Falcon launches on June 3rd.", bank="shared", document_id="d1")
        theirs = await call(b, "retain", content="Project Falcon was cancelled.", bank="shared", document_id="d1")
        seen_a = await call(a, "recall", query="Project Falcon", bank="shared")
        seen_b = await call(b, "recall", query="Project Falcon", bank="shared")
        assert [m["id"] for m in seen_a["memories"]] == mine["memory_ids"]
        assert [m["id"] for m in seen_b["memories"]] == theirs["memory_ids"]
        assert "cancelled" not in str(seen_a) and "June" not in str(seen_b)
        reflected = await call(b, "reflect", query="When does Project Falcon launch?", bank="shared")
        assert set(reflected["citations"]) <= set(theirs["memory_ids"]) and "June" not in reflected["answer"]
        assert [x["bank"] for x in (await call(a, "list_banks"))["banks"]] == ["shared"]
        await call(a, "retain", content="Only A has this bank.", bank="private-a")
        assert [x["bank"] for x in (await call(b, "list_banks"))["banks"]] == ["shared"]


async def test_foreign_ids_change_and_reveal_nothing(tenants: dict, pg_url: str) -> None:
    async with stdio_client(tenants["a"]) as a, stdio_client(tenants["b"]) as b:
        mine = await call(a, "retain", content="Vault code is 4417.", bank="shared", document_id="vault")
        await call(b, "retain", content="Unrelated note.", bank="shared")
        assert await call(b, "forget", bank="shared", memory_ids=mine["memory_ids"]) == {"deleted": 0}
        assert await call(b, "forget", bank="shared", document_id="vault") == {"deleted": 0}
        recalled = await call(b, "recall", query="Vault code 4417", bank="shared")
        assert recalled["memories"] == []
        still = await call(a, "recall", query="Vault code", bank="shared")
        assert [m["id"] for m in still["memories"]] == mine["memory_ids"]


async def test_unknown_bank_reads_the_same_as_another_tenants_bank(tenants: dict) -> None:
    async with stdio_client(tenants["a"]) as a, stdio_client(tenants["b"]) as b:
        await call(a, "retain", content="A's secret plans.", bank="plans")
        for tool, args in (
            ("recall", {"query": "plans"}),
            ("reflect", {"query": "plans"}),
            ("forget", {"document_id": "x"}),
            ("forget", {"whole_bank": True}),
        ):
            other = await b.call_tool(tool, {"bank": "plans", **args})
            nowhere = await b.call_tool(tool, {"bank": "nowhere-plans", **args})
            assert not other.is_error and not nowhere.is_error
            seen = json.dumps([other.structured_content, other.content[0].text])
            unused = json.dumps([nowhere.structured_content, nowhere.content[0].text])
            assert seen == unused.replace("nowhere-plans", "plans")
            assert "secret" not in seen
        assert (await call(a, "recall", query="secret plans", bank="plans"))["memories"] != []


async def test_auth_off_uses_the_default_schema_only(tenants: dict, pg_url: str) -> None:
    schema_a, schema_b, default = tenants["schemas"]
    async with stdio_client(tenants["a"]) as a:
        await call(a, "retain", content="Tenant A's note about comets.", bank="notes")
    async with stdio_client(tenants["off"]) as off:
        stored = await call(off, "retain", content="A default-schema note about comets.", bank="notes")
        recalled = await call(off, "recall", query="comets", bank="notes")
        assert [m["id"] for m in recalled["memories"]] == stored["memory_ids"]
    conn = await asyncpg.connect(pg_url)
    try:
        for schema, text in (
            (default, "A default-schema note about comets."),
            (schema_a, "Tenant A's note about comets."),
        ):
            rows = await conn.fetch(f'SELECT text FROM "{schema}".memories')
            assert [r["text"] for r in rows] == [text]
        assert not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema_b)
    finally:
        await conn.close()
