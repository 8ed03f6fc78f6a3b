"""Adversarial, end to end: two tenants on one database, each through its own stdio MCP server.

Tenant A is driven as a prompt-injected agent would be: it asks for tenant B's banks, ids and
documents, sends SQL and look-alike names in every string, and tries keys close to B's. Nothing
may return, change or reveal B's data, and errors may not tell B's banks from unused names.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from helpers import REPO, call, call_error, connect, internals_in, server_env, stdio_client, unique
from mcp import Client

pytestmark = pytest.mark.anyio

SQL_FRAGMENTS = [
    "'; DROP TABLE memories; --",
    '"); DELETE FROM banks; --',
    "x' OR '1'='1",
    "1; SELECT pg_sleep(5); --",
    "$1",
    "{schema}.memories",
    "\\'; TRUNCATE documents CASCADE; --",
    "') UNION SELECT text FROM memories --",
    "*/ SELECT 1; /*",
]


@dataclass
class Keyed:
    """Two tenants in one key map; `env(key)` is the environment of a server for one of them."""

    schema_a: str
    schema_b: str
    key_a: str
    key_b: str
    base: dict[str, str]

    def env(self, key: str) -> dict[str, str]:
        return {**self.base, "BULKHEAD_API_KEY": key}


@dataclass
class Tenants:
    a: Client
    b: Client
    keyed: Keyed

    @property
    def schema_a(self) -> str:
        return self.keyed.schema_a

    @property
    def schema_b(self) -> str:
        return self.keyed.schema_b


@pytest.fixture
def keyed(pg_url: str) -> Keyed:
    schema_a, schema_b = unique("adv_a"), unique("adv_b")
    key_a, key_b = "ka-" + secrets.token_urlsafe(24), "kb-" + secrets.token_urlsafe(24)
    base = server_env(pg_url, tenant_key_map=f"{key_a}:{schema_a}; {key_b}:{schema_b}")
    return Keyed(schema_a, schema_b, key_a, key_b, base)


@pytest.fixture
async def tenants(keyed: Keyed) -> AsyncIterator[Tenants]:
    """One stdio server per tenant, as two agent hosts would start them (BULKHEAD_API_KEY picks)."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(stdio_client(keyed.env(keyed.key_a)))
        b = await stack.enter_async_context(stdio_client(keyed.env(keyed.key_b)))
        yield Tenants(a, b, keyed)


async def seed(client: Client, who: str) -> dict[str, Any]:
    """The same bank names, document ids and mostly the same words in both tenants."""
    notes = await call(
        client,
        "retain",
        content=f"The launch code for {who} is kept in the ocelot vault. Ocelot vault rules apply.",
        bank="notes",
        document_id="doc-1",
        tags=["shared", who],
        metadata={"owner": who},
    )
    private = await call(client, "retain", content=f"{who} private zebra ledger entry.", bank=f"{who}-private")
    return {"notes": notes, "private": private}


async def snapshot(pg_url: str, schema: str) -> list[tuple]:
    conn = await connect(pg_url)
    try:
        rows = []
        for table in ("banks", "documents", "memories"):
            rows += [(table, *r.values()) for r in await conn.fetch(f'SELECT * FROM "{schema}".{table} ORDER BY 1, 2')]
        return rows
    finally:
        await conn.close()


def memory_texts(result: dict[str, Any]) -> list[str]:
    return [m["text"] for m in result["memories"]]


async def test_other_tenants_banks_ids_and_documents_stay_out_of_reach(tenants: Tenants, pg_url: str) -> None:
    a, b = tenants.a, tenants.b
    mine = await seed(a, "alpha")
    theirs = await seed(b, "bravo")
    before_b = await snapshot(pg_url, tenants.schema_b)

    # A asks for B's words in the bank name both tenants use: only A's memories come back.
    found = await call(a, "recall", query="bravo zebra ledger ocelot vault launch code", bank="notes", max_results=100)
    assert memory_texts(found) == ["The launch code for alpha is kept in the ocelot vault. Ocelot vault rules apply."]
    assert {m["id"] for m in found["memories"]} == set(mine["notes"]["memory_ids"])
    banks = await call(a, "list_banks")
    assert sorted(x["bank"] for x in banks["banks"]) == ["alpha-private", "notes"]

    # B's memory ids and document id, copied into A's calls, touch nothing of B's.
    assert await call(a, "forget", bank="notes", memory_ids=theirs["notes"]["memory_ids"]) == {"deleted": 0}
    forgotten = await call(a, "forget", bank="bravo-private", memory_ids=theirs["private"]["memory_ids"])
    assert forgotten == {"deleted": 0}
    assert await call(a, "forget", bank="bravo-private", whole_bank=True) == {"deleted": 0}
    by_id = await call(a, "recall", query=theirs["notes"]["memory_ids"][0], bank="notes")
    assert all("bravo" not in t for t in memory_texts(by_id))
    reflected = await call(a, "reflect", query="What is bravo's launch code and zebra ledger?", bank="notes")
    assert "bravo" not in reflected["answer"].lower()
    assert set(reflected["citations"]) <= set(mine["notes"]["memory_ids"])
    # Re-retaining and forgetting the shared document id replace and delete A's document only.
    replaced = await call(a, "retain", content="Alpha replaced its own doc-1.", bank="notes", document_id="doc-1")
    assert await call(a, "forget", bank="notes", document_id="doc-1") == {"deleted": len(replaced["memory_ids"])}

    assert await snapshot(pg_url, tenants.schema_b) == before_b
    still = await call(b, "recall", query="bravo launch code ocelot", bank="notes")
    assert [m["id"] for m in still["memories"]] == theirs["notes"]["memory_ids"]


BANK_PROBES = [
    "{b}",
    "{b}.memories",
    "{b}.banks",
    "../{b}",
    "..\\{b}",
    '"{b}"',
    '"{b}"."memories"',
    "{b}\\",
    "'{b}'",
    "{b}; SELECT 1",
    "bravo-private",
    "BRAVO-PRIVATE",
    "Bravo-Private",
    "bravo\u2010private",  # hyphen look-alike
    "br\u0430vo-private",  # Cyrillic a
    "\uff42ravo-private",  # fullwidth b
    "bravo-private\u200b",  # zero-width space
    "bravo-private\n",
    " bravo-private",
    "bravo-private\x00",
    "",
    "x" * 65,
]


async def test_bank_names_of_other_tenants_and_schemas_read_like_unknown_names(tenants: Tenants, pg_url: str) -> None:
    a, b = tenants.a, tenants.b
    await seed(a, "alpha")
    await seed(b, "bravo")
    before_b = await snapshot(pg_url, tenants.schema_b)
    nowhere = "nowhere-" + secrets.token_hex(4)
    calls = {
        "recall": lambda bank: ("recall", {"query": "zebra ledger", "bank": bank}),
        "reflect": lambda bank: ("reflect", {"query": "zebra ledger", "bank": bank}),
        "forget": lambda bank: ("forget", {"bank": bank, "document_id": "doc-1"}),
        "forget_bank": lambda bank: ("forget", {"bank": bank, "whole_bank": True}),
    }

    async def reading(name: str, bank: str) -> tuple[bool, str]:
        """Whether the call failed, and all it returned with the bank's name written as NAME."""
        tool, args = calls[name](bank)
        result = await a.call_tool(tool, args)
        seen = json.dumps([result.content[0].text, result.structured_content], ensure_ascii=False)
        return result.is_error, seen.replace(json.dumps(repr(bank))[1:-1], "NAME").replace(json.dumps(bank), "NAME")

    baseline = {name: await reading(name, nowhere) for name in calls}
    # A bank nobody created holds no memories yet: no error, nothing found, nothing deleted.
    assert not any(failed for failed, _ in baseline.values())
    for probe in (p.replace("{b}", tenants.schema_b) for p in BANK_PROBES):
        for name in calls:
            failed, seen = await reading(name, probe)
            assert internals_in(seen, probe) == [], seen
            assert "zebra" not in seen and "bravo private" not in seen.lower()
            if not failed:
                # The same result as for a name nobody uses, whoever else may have this bank.
                assert seen == baseline[name][1]
            else:
                assert "bank must be 1-64 characters" in seen, seen
        # Valid names are banks of A's own, created only by retain and only in A's schema.
        stored = await a.call_tool("retain", {"content": "alpha's note under a strange bank name", "bank": probe})
        if not stored.is_error:
            assert stored.structured_content["bank"] == probe
    banks_b = await call(b, "list_banks")
    assert sorted(x["bank"] for x in banks_b["banks"]) == ["bravo-private", "notes"]
    assert await snapshot(pg_url, tenants.schema_b) == before_b
    # Bank names are exact: no case folding or look-alike matching inside A either.
    assert (await call(a, "recall", query="ocelot", bank="NOTES"))["memories"] == []


async def test_sql_fragments_in_every_string_argument_are_only_data(tenants: Tenants, pg_url: str) -> None:
    a, b = tenants.a, tenants.b
    await seed(b, "bravo")
    before_b = await snapshot(pg_url, tenants.schema_b)
    for number, fragment in enumerate(SQL_FRAGMENTS):
        content = f"Note {number} quotes {fragment} verbatim"
        kept = await call(
            a,
            "retain",
            content=content,
            bank=f"sql-{number}",
            context=fragment,
            tags=[fragment, "sql"],
            document_id=fragment,
            metadata={fragment: fragment, "nested": [fragment]},
        )
        assert kept["document_id"] == fragment
        got = await call(a, "recall", query=f"Note {number} quotes verbatim {fragment}", bank=f"sql-{number}")
        [memory] = got["memories"]
        assert (memory["text"], memory["context"], memory["tags"], memory["document_id"]) == (
            content,
            fragment,
            [fragment, "sql"],
            fragment,
        )
        assert memory["metadata"] == {fragment: fragment, "nested": [fragment]}
        tagged = await call(a, "recall", query="verbatim", bank=f"sql-{number}", tags=[fragment])
        assert len(tagged["memories"]) == 1
        for tool, args in (
            ("recall", {"query": fragment, "bank": "sql-0", "since": fragment}),
            ("recall", {"query": fragment, "bank": "sql-0", "until": fragment}),
            ("retain", {"content": fragment, "occurred_at": fragment}),
            ("forget", {"bank": "sql-0", "memory_ids": [fragment]}),
            ("forget", {"bank": fragment, "document_id": fragment}),
            ("reflect", {"query": fragment, "bank": fragment}),
        ):
            text = await call_error(a, tool, **args)
            assert internals_in(text, fragment) == [], text
        assert (await call(a, "forget", bank=f"sql-{number}", document_id=fragment))["deleted"] == 1
        assert (await call(a, "recall", query=fragment, bank=f"sql-{number}"))["memories"] == []
    assert await snapshot(pg_url, tenants.schema_b) == before_b
    assert len((await call(b, "list_banks"))["banks"]) == 2


async def test_oversized_and_deeply_nested_arguments_are_refused_whole(keyed: Keyed, pg_url: str) -> None:
    async with stdio_client(keyed.env(keyed.key_a)) as a:
        await seed(a, "alpha")
        before_a = await snapshot(pg_url, keyed.schema_a)
        await refuse_oversized(a)
        assert await snapshot(pg_url, keyed.schema_a) == before_a
        assert len((await call(a, "list_banks"))["banks"]) == 2


async def refuse_oversized(a: Client) -> None:

    def nested(depth: int) -> dict[str, Any]:
        value: dict[str, Any] = {"leaf": True}
        for _ in range(depth):
            value = {"n": value}
        return value

    refused = [
        ("retain", {"content": "x", "metadata": nested(9)}, "nested deeper"),
        ("retain", {"content": "x", "metadata": nested(150)}, "nested deeper"),
        ("retain", {"content": "x", "metadata": {"k": "v" * 20_000}}, "at most 16384"),
        ("retain", {"content": "x", "metadata": {f"k{i}": i for i in range(3_000)}}, "at most 16384"),
        ("retain", {"content": "x", "tags": [f"t{i}" for i in range(5_000)]}, "at most 64"),
        ("retain", {"content": "x", "tags": ["t" * 129]}, "1-128 characters"),
        ("recall", {"query": "x", "tags": [f"t{i}" for i in range(5_000)]}, "at most 64"),
        ("forget", {"bank": "notes", "memory_ids": [str(secrets.randbits(8)) for _ in range(2_000)]}, "at most 1000"),
        ("retain", {"content": "x", "document_id": "d" * 5_000}, "document_id must be"),
        ("retain", {"content": "x" * (1024 * 1024 + 1)}, "over the limit"),
        ("recall", {"query": "q" * 5_000}, "longer than 4000"),
        ("retain", {"content": "x", "context": "c" * 5_000}, "longer than 4000"),
        ("recall", {"query": "x", "max_results": 10**40}, "between 1 and 100"),
        ("reflect", {"query": "x", "max_tokens": -(10**40)}, "between 1 and 100000"),
    ]
    for tool, args, expected in refused:
        text = await call_error(a, tool, **args)
        assert expected in text and "\n" not in text and len(text) < 300, text
        assert internals_in(text) == [], text


async def test_deeper_json_than_a_client_can_send_is_dropped_and_the_server_answers_on(keyed: Keyed) -> None:
    """A hand-written message nested 100,000 deep: no reply to it, and the next call is served."""
    env = keyed.env(keyed.key_a)
    deep = '{"n":' * 100_000 + "{}" + "}" * 100_000
    lines = [
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}',
        '{"jsonrpc":"2.0","method":"notifications/initialized"}',
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"retain","arguments":'
        '{"content":"deep","metadata":' + deep + "}}}",
        '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_banks","arguments":{}}}',
    ]
    async with await anyio.open_process([sys.executable, "-m", "mcp_server", "serve"], env=env, cwd=REPO) as process:
        assert process.stdin and process.stdout
        for line in lines:
            await process.stdin.send((line + "\n").encode())
        received = b""
        with anyio.fail_after(30):
            while received.count(b"\n") < 2:
                received += await process.stdout.receive()
        await process.stdin.aclose()
        await process.wait()
    replies = received.decode().splitlines()
    assert '"id":1' in replies[0]
    assert '"id":3' in replies[1] and '"isError":false' in replies[1] and "No banks yet" in replies[1]


async def test_keys_close_to_a_valid_key_stop_the_server(keyed: Keyed) -> None:
    key = keyed.key_b
    variants = {
        "prefix": key[:-1],
        "suffix": key + "x",
        "upper case": key.upper(),
        "leading space": " " + key,
        "trailing newline": key + "\n",
        "hashed form": "sha256:" + hashlib.sha256(key.encode()).hexdigest(),
        "map entry": f"{key}:{keyed.schema_b}",
    }
    results: dict[str, tuple[int, str]] = {}

    async def start(name: str, value: str) -> None:
        done = await anyio.run_process(
            [sys.executable, "-m", "mcp_server", "serve"],
            env=keyed.env(value),
            cwd=REPO,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        results[name] = (done.returncode, done.stderr.decode())

    async with anyio.create_task_group() as group:
        for name, value in variants.items():
            group.start_soon(start, name, value)
    assert set(results) == set(variants)
    for name, (code, stderr) in results.items():
        assert code != 0, name
        assert stderr.count("\n") == 1, (name, stderr)
        assert "BULKHEAD_API_KEY is not a known key" in stderr, (name, stderr)
        for secret in (keyed.key_a, keyed.key_b, key[:-1], key.upper(), key[:12]):
            assert secret not in stderr, name
