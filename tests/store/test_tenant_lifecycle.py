"""The operator's side of tenants: `bulkhead tenants list`, `export`, `import`, `tenants drop`.

Every command runs as a real `bulkhead` process against the session's PostgreSQL; recall before
and after an export and import goes through a real MCP client.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from helpers import call, in_process_client, run_bulkhead, server_env, unique

from mcp_server.tenancy import tenant_role_name

pytestmark = pytest.mark.anyio

FACTS = [
    (
        "people",
        "Alice moved to Lisbon in March and now works at a bakery.",
        ["alice", "moves"],
        "2024-03-15T10:30:00+02:00",
    ),
    ("people", "Bob adopted a grey cat called Miso from the shelter.", ["bob"], "2024-04-02T09:00:00+00:00"),
    ("people", "Alice: I finally learned to bake sourdough bread.", ["alice"], None),
    ("people", "Carol runs the night shift at the Lisbon harbour.", ["carol"], "2024-05-20T22:00:00+00:00"),
    ("trips", "The train to Porto leaves at 7:40 from Santa Apolonia.", ["travel"], "2024-06-01T07:40:00+01:00"),
    ("trips", "Pack the blue umbrella: Porto is rainy in June.", ["travel", "packing"], None),
    ("trips", "Bob recommends the bakery near the Porto cathedral.", ["bob", "travel"], None),
]
QUERIES = [
    ("people", "Where does Alice live?"),
    ("people", "pets"),
    ("people", "bread baking"),
    ("trips", "When does the train leave?"),
    ("trips", "bakery"),
]


async def fill(pg_url: str, schema: str) -> None:
    async with in_process_client(pg_url, schema) as client:
        for number, (bank, content, tags, when) in enumerate(FACTS):
            arguments: dict[str, Any] = {
                "content": content,
                "bank": bank,
                "tags": tags,
                "context": f"note {number}",
                "metadata": {"n": number, "nested": {"ok": True}},
                "document_id": f"doc-{number}",
            }
            if when:
                arguments["occurred_at"] = when
            await call(client, "retain", **arguments)


async def recalls(pg_url: str, schema: str) -> list[list[tuple[str, float, str]]]:
    """For each query: the ids, scores and texts recall returns, in order."""
    found = []
    async with in_process_client(pg_url, schema) as client:
        for bank, query in QUERIES:
            result = await call(client, "recall", query=query, bank=bank, max_results=5)
            found.append([(m["id"], m["score"], m["text"]) for m in result["memories"]])
    return found


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def bulkhead(pg_url: str, *args: str, stdin: str | None = None, **settings: str) -> Any:
    return run_bulkhead(*args, env=server_env(pg_url, **settings), stdin=stdin)


@pytest.fixture
async def source(pg_url: str) -> str:
    schema = unique("src")
    await fill(pg_url, schema)
    return schema


async def test_an_export_imported_into_a_fresh_schema_recalls_as_the_original(pg_url: str, source: str) -> None:
    before = await recalls(pg_url, source)
    assert all(before), "every query must find something, or the comparison proves little"
    exported = bulkhead(pg_url, "export", "--schema", source)
    assert exported.returncode == 0, exported.stderr
    records = lines(exported.stdout)
    header = records[0]
    assert (header["format"], header["version"], header["schema"], header["vectors"]) == (
        "bulkhead-export",
        1,
        source,
        False,
    )
    assert [r["name"] for r in records if r["type"] == "bank"] == ["people", "trips"]
    memories = [r for r in records if r["type"] == "memory"]
    assert [m["text"] for m in memories] == [f[1] for f in FACTS if f[0] == "people"] + [
        f[1] for f in FACTS if f[0] == "trips"
    ]
    assert all("embedding" not in m for m in memories)
    assert memories[0]["metadata"] == {"n": 0, "nested": {"ok": True}} and memories[0]["context"] == "note 0"

    # Without vectors: the importer embeds every memory again.
    copy = unique("copy")
    imported = bulkhead(pg_url, "import", "--schema", copy, stdin=exported.stdout)
    assert imported.returncode == 0, imported.stderr
    assert "import " in imported.stderr and "7 memories embedded again" in imported.stderr
    after = await recalls(pg_url, copy)
    assert [[(i, t) for i, _, t in q] for q in after] == [[(i, t) for i, _, t in q] for q in before]
    assert [s for q in after for _, s, _ in q] == pytest.approx([s for q in before for _, s, _ in q], abs=1e-4)

    # With vectors: nothing is embedded again, and every score is the same.
    with_vectors = bulkhead(pg_url, "export", "--schema", source, "--vectors")
    assert with_vectors.returncode == 0, with_vectors.stderr
    assert all(len(r["embedding"]) == 384 for r in lines(with_vectors.stdout) if r["type"] == "memory")
    exact = unique("exact")
    imported = bulkhead(pg_url, "import", "--schema", exact, stdin=with_vectors.stdout)
    assert imported.returncode == 0, imported.stderr
    assert "embedded again" not in imported.stderr
    assert await recalls(pg_url, exact) == before

    # Export of the copy reads the same as the original's, fields, order and all.
    again = bulkhead(pg_url, "export", "--schema", exact)
    assert lines(again.stdout)[1:] == records[1:]


async def test_import_refuses_a_bank_with_memories_unless_replace(pg_url: str, source: str) -> None:
    exported = bulkhead(pg_url, "export", "--schema", source, "--bank", "trips", "--vectors").stdout
    target = unique("target")
    await fill(pg_url, target)
    refused = bulkhead(pg_url, "import", "--schema", target, stdin=exported)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("bulkhead: bank 'trips'")
    assert "Traceback" not in refused.stderr
    replaced = bulkhead(pg_url, "import", "--schema", target, "--replace", stdin=exported)
    # The ids are the source's, and the target's own trips (same ids? no: fresh uuids) are gone.
    assert replaced.returncode == 0, replaced.stderr
    conn = await asyncpg.connect(pg_url)
    try:
        ids = await conn.fetch(
            f'SELECT m.id::text FROM "{target}".memories m JOIN "{target}".banks b ON b.id = m.bank_id'
            " WHERE b.name = 'trips' ORDER BY m.seq"
        )
    finally:
        await conn.close()
    assert [r["id"] for r in ids] == [r["id"] for r in lines(exported) if r["type"] == "memory"]


async def test_a_cut_short_export_imports_no_part_of_its_bank(pg_url: str, source: str) -> None:
    exported = bulkhead(pg_url, "export", "--schema", source, "--vectors").stdout.splitlines()
    # The whole first bank and half of the second.
    cut = "\n".join(exported[: len(exported) - 2])
    target = unique("cut")
    result = bulkhead(pg_url, "import", "--schema", target, stdin=cut)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bulkhead: bank 'trips': the export declares 3 memories but holds 1")
    conn = await asyncpg.connect(pg_url)
    try:
        banks = await conn.fetch(
            f'SELECT b.name, count(m.id) AS n FROM "{target}".banks b LEFT JOIN "{target}".memories m'
            " ON m.bank_id = b.id GROUP BY b.name ORDER BY b.name"
        )
    finally:
        await conn.close()
    assert [(r["name"], r["n"]) for r in banks] == [("people", 4)]
    for garbage, message in [
        ("", "the input is empty"),
        ("not json\n", "line 1 is not JSON"),
        (json.dumps({"format": "bulkhead-export", "version": 9}), "format version 9"),
    ]:
        result = bulkhead(pg_url, "import", "--schema", target, stdin=garbage)
        assert result.returncode == 2 and message in result.stderr, result.stderr


async def test_tenants_list_shows_every_schema_and_marks_unmapped_ones(pg_url: str, source: str) -> None:
    key_map = f"{unique('k')}:{source}"
    listed = bulkhead(pg_url, "tenants", "list", tenant_key_map=key_map, default_schema=unique("dflt"))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows[source][1:3] == ["2", "7"] and int(rows[source][3]) > 0 and rows[source][-1] == "mapped"
    others = [name for name, row in rows.items() if name != source]
    assert others and all(rows[name][-1] == "KEY" for name in others)  # "NO KEY"


async def test_tenants_drop_asks_and_refuses_what_it_must(pg_url: str, source: str) -> None:
    default = bulkhead(pg_url, "tenants", "drop", "--schema", source, "--yes", default_schema=source)
    assert default.returncode == 2 and "default schema" in default.stderr
    # pgvector's own schema is refused by name before anything is looked up; a schema an operator
    # chose for an extension is refused by what it holds (`store.tenants.drop_schema`).
    extension = bulkhead(pg_url, "tenants", "drop", "--schema", "bulkhead_ext", "--yes")
    assert extension.returncode == 2 and "reserved for the vector extension" in extension.stderr
    unknown = bulkhead(pg_url, "tenants", "drop", "--schema", unique("nobody"), "--yes")
    assert unknown.returncode == 4, unknown.stderr
    mistyped = bulkhead(pg_url, "tenants", "drop", "--schema", source, stdin="something else\n")
    assert mistyped.returncode == 2 and "nothing was dropped" in mistyped.stderr
    dropped = bulkhead(pg_url, "tenants", "drop", "--schema", source, stdin=f"{source}\n")
    assert dropped.returncode == 0, dropped.stderr
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", source) == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", tenant_role_name(source)) == 0
    finally:
        await conn.close()
