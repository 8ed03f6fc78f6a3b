"""Fuzzing every tool through a real stdio MCP client with hypothesis.

Each example is one tool call with generated arguments: valid, invalid or hostile. After every
call the server must have answered (never crashed), a refusal must be one line with nothing
internal in it, a refused or read-only call must have changed nothing, and the next valid call
must succeed. Another tenant's data, and a bank the fuzzer cannot name, stay as they were.

The budget is small for CI; set BULKHEAD_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import anyio.from_thread
import asyncpg
from helpers import call, connect, internals_in, server_env, stdio_client, unique
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp import Client

EXAMPLES = int(os.environ.get("BULKHEAD_FUZZ_EXAMPLES", "80"))
READ_ONLY = {"recall", "reflect", "list_banks"}

HOSTILE = [
    "",
    " ",
    "default",
    "notes",
    "fuzz",
    "NOTES",
    "n\u043etes",
    "tenant_b",
    "tenant_b.memories",
    "../tenant_b",
    '"tenant_b"."memories"',
    "'; DROP TABLE memories; --",
    "x' OR '1'='1",
    "$1",
    "{schema}",
    "\x00",
    "a\x00b",
    "\u202eevil",
    "line\nbreak",
    "a" * 65,
    "b" * 5000,
    "2024-05-08",
    "2024-05-08T13:45:00Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2024-02-30",
    "not a date",
    "3f2b8c1e-5d4a-4b7e-9c0f-1a2b3c4d5e6f",
    "00000000-0000-0000-0000-000000000000",
    "&|!():*",
    "<-> @@ ::tsquery",
]

texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200)
strings = st.one_of(st.sampled_from(HOSTILE), texts, st.uuids().map(str))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)),
    max_leaves=12,
)

# Well-formed values, so that calls get past the schema and the first checks and reach the
# store; hypothesis still pushes them to their edges (first and last days, long texts, ...).
clean_texts = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=300).filter(
    str.strip
)
offsets = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))
# The first and last days, pushed past the range of a UTC datetime by their offset.
EDGE_TIMESTAMPS = ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01", "9999-12-31T23:59:59.999999"]
timestamps = st.one_of(
    st.sampled_from(EDGE_TIMESTAMPS),
    st.dates().map(date.isoformat),
    st.datetimes().map(datetime.isoformat),
    st.datetimes(timezones=offsets.map(timezone)).map(datetime.isoformat),
)
banks = st.one_of(
    st.sampled_from(["default", "notes", "fuzz", "Fuzz.2", "a-b_c"]), st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)
)
tag_lists = st.lists(clean_texts.filter(lambda t: len(t) <= 128), max_size=8)
small_ints = st.integers(min_value=-3, max_value=150)
memory_ids = st.lists(st.uuids().map(str), max_size=4)
metadata = st.dictionaries(clean_texts, json_values, max_size=5)
hostile = st.one_of(strings, json_values, st.lists(st.sampled_from(HOSTILE), min_size=60, max_size=80))


def argument(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Well formed nine times in ten, else hostile: a wrong type, a hostile string, an oversized list."""
    return st.integers(0, 9).flatmap(lambda n: hostile if n == 0 else valid)


ARGUMENTS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "retain": {
        "content": argument(clean_texts),
        "bank": argument(banks),
        "context": argument(clean_texts),
        "occurred_at": argument(timestamps),
        "tags": argument(tag_lists),
        "document_id": argument(clean_texts.filter(lambda t: len(t) <= 256)),
        "metadata": argument(metadata),
    },
    "recall": {
        "query": argument(clean_texts),
        "bank": argument(banks),
        "max_results": argument(small_ints),
        "max_tokens": argument(small_ints),
        "tags": argument(tag_lists),
        "since": argument(timestamps),
        "until": argument(timestamps),
    },
    "reflect": {"query": argument(clean_texts), "bank": argument(banks), "max_tokens": argument(small_ints)},
    "forget": {"bank": argument(banks), "memory_ids": argument(memory_ids), "document_id": argument(clean_texts)},
    "list_banks": {},
}
REQUIRED = {"content", "query"}


@st.composite
def tool_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    tool = draw(st.sampled_from([*ARGUMENTS, *ARGUMENTS, *ARGUMENTS, "drop_tables", "retain ", "RECALL"]))
    arguments: dict[str, Any] = {}
    for name, strategy in ARGUMENTS.get(tool, {}).items():
        wanted = name in REQUIRED or name == "bank" or draw(st.booleans())
        if wanted and draw(st.integers(0, 19)):  # a required argument is left out one time in twenty
            arguments[name] = draw(strategy)
    arguments.update(
        draw(st.dictionaries(st.sampled_from(["schema", "tenant", "api_key", "sql"]), strings, max_size=2))
    )
    return tool, arguments


def strings_in(value: Any) -> list[str]:
    """Every string inside an argument value: what a reply may legitimately echo."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_in(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


async def snapshot(conn: asyncpg.Connection, schema: str) -> list[tuple]:
    rows = []
    for table in ("banks", "documents", "memories"):
        rows += [(table, *r.values()) for r in await conn.fetch(f'SELECT * FROM "{schema}".{table} ORDER BY 1, 2')]
    return rows


async def bank_rows(conn: asyncpg.Connection, schema: str, bank: str) -> list[tuple]:
    """The rows of one bank: the bank, its documents and its memories."""
    rows = [("banks", *r.values()) for r in await conn.fetch(f'SELECT * FROM "{schema}".banks WHERE name = $1', bank)]
    for table in ("documents", "memories"):
        query = f'SELECT t.* FROM "{schema}".{table} t JOIN "{schema}".banks b ON b.id = t.bank_id WHERE b.name = $1'
        rows += [(table, *r.values()) for r in await conn.fetch(query + " ORDER BY 1, 2", bank)]
    return rows


def test_fuzz_every_tool(pg_url: str) -> None:
    schema, other = unique("fuzz"), unique("fuzz_other")
    key, other_key = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    base = server_env(pg_url, tenant_key_map=f"{key}:{schema};{other_key}:{other}")
    sentinel = "sentinel-" + secrets.token_hex(6)
    with anyio.from_thread.start_blocking_portal() as portal:
        conn: asyncpg.Connection = portal.call(connect, pg_url)
        try:
            with (
                tempfile.TemporaryFile("w+") as errlog,
                portal.wrap_async_context_manager(stdio_client({**base, "BULKHEAD_API_KEY": key}, errlog)) as client,
                portal.wrap_async_context_manager(stdio_client({**base, "BULKHEAD_API_KEY": other_key})) as neighbour,
            ):
                for target in (client, neighbour):
                    for bank in ("default", "notes", sentinel):
                        portal.call(_retain, target, bank)
                kept_other = portal.call(snapshot, conn, other)
                kept_mine = portal.call(bank_rows, conn, schema, sentinel)
                assert len(kept_mine) == 3

                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                )
                @given(tool_calls())
                @example(("retain", {"content": "edge", "occurred_at": EDGE_TIMESTAMPS[0]}))
                @example(("recall", {"query": "edge", "since": EDGE_TIMESTAMPS[1]}))
                def one_call(example: tuple[str, dict[str, Any]]) -> None:
                    tool, arguments = example
                    before = portal.call(snapshot, conn, schema)
                    result = portal.call(client.call_tool, tool, arguments)
                    text = result.content[0].text if result.content else ""
                    if result.is_error:
                        assert "\n" not in text and text.strip(), text
                        # The SDK's bare "Error executing tool X" means the tool crashed.
                        assert not re.fullmatch(r"Error executing tool \S+", text), (tool, arguments)
                        assert internals_in(text, *strings_in(arguments)) == [], text
                    else:
                        assert result.structured_content is not None
                    if result.is_error or tool in READ_ONLY:
                        assert portal.call(snapshot, conn, schema) == before
                    assert isinstance(portal.call(call, client, "list_banks")["banks"], list)

                one_call()
                assert portal.call(bank_rows, conn, schema, sentinel) == kept_mine
                assert portal.call(snapshot, conn, other) == kept_other
                errlog.seek(0)
                logged = errlog.read()
                assert "Traceback" not in logged and "unexpected exception" not in logged, logged[-2000:]
        finally:
            portal.call(conn.close)


async def _retain(client: Client, bank: str) -> None:
    await call(
        client, "retain", content=f"Stored before the fuzzing in {bank}.", bank=bank, document_id=str(uuid.uuid4())
    )
