"""Bad arguments come back as one actionable sentence; the server stays up and nothing changes.

The refusals are the server's, not the transport's, so they are checked in-process; one spawned
stdio server shows that a frame it cannot parse does not stop it."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import REPO, call, call_error, in_process_client, server_env, unique

pytestmark = pytest.mark.anyio

INTERNAL = ("Traceback", "asyncpg", "psycopg", "SELECT ", "INSERT ", "DELETE ", "SQLSTATE", 'File "')

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("retain", {"content": ""}, "content is empty"),
    ("retain", {"content": "  \n\t "}, "content is empty"),
    ("retain", {"content": "x" * 2049}, "over the limit of 2048 bytes"),
    ("retain", {"content": "é" * 1025}, "over the limit of 2048 bytes"),
    ("retain", {"content": "nul \x00 byte"}, "NUL character"),
    ("retain", {"content": "ok", "context": "bad \x00"}, "NUL character"),
    ("retain", {"content": "ok", "bank": ""}, "bank must be"),
    ("retain", {"content": "ok", "bank": "-starts-with-dash"}, "bank must be"),
    ("retain", {"content": "ok", "bank": "has space"}, "bank must be"),
    ("retain", {"content": "ok", "bank": "a" * 65}, "bank must be"),
    ("retain", {"content": "ok", "bank": "../other"}, "bank must be"),
    ("retain", {"content": "ok", "bank": "bänk"}, "bank must be"),
    ("retain", {"content": "ok", "occurred_at": "yesterday"}, "not an ISO 8601"),
    ("retain", {"content": "ok", "occurred_at": "2024-13-45"}, "not an ISO 8601"),
    ("retain", {"content": "ok", "tags": ["t"] * 65}, "at most 64"),
    ("retain", {"content": "ok", "tags": ["x" * 129]}, "each tag must be"),
    ("retain", {"content": "ok", "tags": [""]}, "each tag must be"),
    ("retain", {"content": "ok", "metadata": {"k": "v" * 20000}}, "bytes as JSON"),
    (
        "retain",
        {"content": "ok", "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}},
        "nested deeper",
    ),
    ("retain", {"content": "ok", "metadata": {"k": "nul \x00"}}, "NUL character"),
    ("retain", {"content": "ok", "document_id": ""}, "document_id must be"),
    ("retain", {"content": "ok", "document_id": "d" * 257}, "document_id must be"),
    ("recall", {"query": ""}, "query is empty"),
    ("recall", {"query": "   "}, "query is empty"),
    ("recall", {"query": "q \x00"}, "NUL character"),
    ("recall", {"query": "q", "since": "last week"}, "since is not an ISO 8601"),
    ("recall", {"query": "q", "until": "2024-02-30"}, "until is not an ISO 8601"),
    ("recall", {"query": "q", "since": "2024-05-01", "until": "2024-01-01"}, "since is later than until"),
    ("recall", {"query": "q", "max_results": 0}, "max_results must be between 1 and 100"),
    ("recall", {"query": "q", "max_results": 1000}, "max_results must be between 1 and 100"),
    ("recall", {"query": "q", "max_tokens": 0}, "max_tokens must be between"),
    ("recall", {"query": "q", "bank": "No Such Bank!"}, "bank must be"),
    ("reflect", {"query": ""}, "query is empty"),
    ("reflect", {"query": "q", "max_tokens": -1}, "max_tokens must be between"),
    ("forget", {"bank": "default"}, "pass memory_ids, document_id or whole_bank=true"),
    ("forget", {"bank": "default", "memory_ids": []}, "pass memory_ids, document_id or whole_bank=true"),
    ("forget", {"bank": "default", "whole_bank": False}, "pass memory_ids, document_id or whole_bank=true"),
    ("forget", {"bank": "default", "document_id": "d", "whole_bank": True}, "pass only one of"),
    ("forget", {"bank": "default", "memory_ids": ["not-a-uuid"]}, "must be UUIDs"),
    ("forget", {"bank": "default", "memory_ids": ["1; DROP TABLE memories"]}, "must be UUIDs"),
    (
        "forget",
        {"bank": "default", "document_id": "d", "memory_ids": ["3f2b8c1e-5d4a-4b7e-9c0f-1a2b3c4d5e6f"]},
        "pass only one of",
    ),
]


async def test_bad_input_is_refused_clearly_and_changes_nothing(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t"), max_content_bytes=2048) as client:
        kept = await call(client, "retain", content="The lighthouse keeper is named Ines.", document_id="keep")
        before = await call(client, "recall", query="lighthouse keeper", max_results=50)
        for tool, arguments, expected in CASES:
            text = await call_error(client, tool, **arguments)
            assert expected in text, (tool, arguments, text)
            assert len(text.splitlines()) == 1, text
            assert not any(marker in text for marker in INTERNAL), text
        # A bank nobody created holds no memories yet: not an error, and nothing changes.
        assert (await call(client, "recall", query="q", bank="unknown"))["memories"] == []
        assert (await call(client, "reflect", query="q", bank="unknown"))["citations"] == []
        assert await call(client, "forget", bank="unknown", document_id="d") == {"deleted": 0}
        # The server is still up, and what was stored is exactly as it was.
        after = await call(client, "recall", query="lighthouse keeper", max_results=50)
        assert after == before
        assert [m["id"] for m in after["memories"]] == kept["memory_ids"]
        banks = await call(client, "list_banks")
        assert [b["bank"] for b in banks["banks"]] == ["default"]
        assert banks["banks"][0]["memories"] == 1


async def test_wrongly_typed_arguments_are_tool_errors(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t")) as client:
        for tool, arguments in (
            ("retain", {}),
            ("retain", {"content": 42}),
            ("recall", {"query": "q", "max_results": "many"}),
            ("retain", {"content": "ok", "metadata": "not an object"}),
            ("retain", {"content": "ok", "tags": "not-a-list"}),
        ):
            text = await call_error(client, tool, **arguments)
            assert text.startswith(f"invalid arguments for {tool}: ") and len(text.splitlines()) == 1, text
            assert not any(marker in text for marker in INTERNAL), text
        assert (await call(client, "list_banks"))["banks"] == []


async def test_lone_surrogates_are_refused(pg_url: str) -> None:
    # JSON on the wire cannot carry a lone surrogate to a tool (the SDK rejects the frame), so this
    # drives the server in-process, where the strings reach the tool as they are.
    async with in_process_client(pg_url, unique("t")) as client:
        for tool, arguments in (
            ("retain", {"content": "lone \ud800 surrogate"}),
            ("retain", {"content": "ok", "metadata": {"k": "\udfff"}}),
            ("retain", {"content": "ok", "tags": ["\ud800"]}),
            ("recall", {"query": "lone \ud800"}),
        ):
            text = await call_error(client, tool, **arguments)
            assert "unpaired surrogate" in text
        assert (await call(client, "list_banks"))["banks"] == []


def test_an_unparseable_frame_does_not_stop_the_stdio_server(pg_url: str) -> None:
    import json
    import subprocess
    import sys

    env = server_env(pg_url, default_schema=unique("t"))
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "serve"],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin and process.stdout

    def send(line: str) -> None:
        process.stdin.write(line + "\n")
        process.stdin.flush()

    try:
        send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "0"},
                    },
                }
            )
        )
        assert json.loads(process.stdout.readline())["id"] == 1
        send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        send(
            '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"retain",'
            '"arguments":{"content":"lone \\ud800"}}}'
        )
        send("this is not json")
        send(
            json.dumps(
                {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_banks", "arguments": {}}}
            )
        )
        reply = json.loads(process.stdout.readline())
        while reply.get("id") != 3:
            reply = json.loads(process.stdout.readline())
        assert reply["result"]["structuredContent"] == {"banks": []}
    finally:
        process.stdin.close()
        assert process.wait(timeout=30) == 0
