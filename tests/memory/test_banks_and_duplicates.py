"""A first session's tools: an unknown bank is empty, a bank can be forgotten whole, the same
memory is stored once, and the texts count right."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import call, call_error, in_process_client, unique
from mcp import Client

pytestmark = pytest.mark.anyio

FACT = "Acme ships releases on Fridays."


async def text_of(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.content[0].text


async def banks(client: Client) -> dict[str, int]:
    return {b["bank"]: b["memories"] for b in (await call(client, "list_banks"))["banks"]}


async def test_the_first_recall_of_a_fresh_install_is_an_empty_result(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("fresh")) as client:
        recalled = await client.call_tool("recall", {"query": "What do I know about the user?"})
        assert not recalled.is_error
        assert recalled.structured_content == {"bank": "default", "memories": [], "truncated": False}
        assert "has no memories yet" in recalled.content[0].text
        reflected = await call(client, "reflect", query="What do I know about the user?")
        assert reflected["citations"] == []
        assert await call(client, "forget", bank="default", document_id="d") == {"deleted": 0}
        # Nothing of this created a bank.
        assert await banks(client) == {}


async def test_forget_deletes_a_whole_bank_when_asked_explicitly(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("whole")) as client:
        await call(client, "retain", content="First note.", bank="scratch")
        await call(client, "retain", content="Second note.", bank="scratch", document_id="two")
        await call(client, "retain", content="A note to keep.", bank="keep")
        assert "whole_bank" in await call_error(client, "forget", bank="scratch")
        assert "only one of" in await call_error(client, "forget", bank="scratch", document_id="two", whole_bank=True)
        assert await banks(client) == {"scratch": 2, "keep": 1}
        assert (
            await text_of(client, "forget", bank="scratch", whole_bank=True)
            == "Deleted 2 memories from bank 'scratch'."
        )
        assert await banks(client) == {"keep": 1}
        assert await call(client, "forget", bank="scratch", whole_bank=True) == {"deleted": 0}
        # The name is free again: retain makes a new, empty bank of it.
        again = await call(client, "retain", content="First note.", bank="scratch")
        assert again["already_stored"] is False
        assert await banks(client) == {"scratch": 1, "keep": 1}


async def test_forget_keeps_its_destructive_annotation(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("notes")) as client:
        forget = next(t for t in (await client.list_tools()).tools if t.name == "forget")
        assert forget.annotations is not None and forget.annotations.destructive_hint is True
        assert forget.input_schema["properties"]["whole_bank"] == {"default": False, "type": "boolean"}
        assert forget.input_schema["required"] == ["bank"]


async def test_an_identical_memory_is_stored_once(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("dup")) as client:
        first = await call(client, "retain", content=FACT, bank="ops")
        assert first["already_stored"] is False
        again = await client.call_tool("retain", {"content": FACT, "bank": "ops"})
        assert not again.is_error and again.structured_content is not None
        assert again.structured_content == {**first, "already_stored": True}
        assert again.content[0].text.startswith("Already stored: 1 memory in bank 'ops'")
        assert "nothing new was stored" in again.content[0].text
        assert await banks(client) == {"ops": 1}
        recalled = await call(client, "recall", query="When does Acme ship?", bank="ops")
        assert [m["id"] for m in recalled["memories"]] == first["memory_ids"]


async def test_retaining_a_document_again_unchanged_stores_nothing_new(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("dup")) as client:
        fields = {"context": "standup", "occurred_at": "2024-05-03", "tags": ["release"], "metadata": {"n": 1}}
        first = await call(client, "retain", content=FACT, bank="ops", document_id="cadence", **fields)
        again = await call(client, "retain", content=FACT, bank="ops", document_id="cadence", **fields)
        assert again == {**first, "already_stored": True}
        # Without a document_id, the same memory is found in that document too.
        loose = await call(client, "retain", content=FACT, bank="ops", **fields)
        assert loose == {**first, "already_stored": True}
        # A document_id of its own is the caller saying it is another document.
        other = await call(client, "retain", content=FACT, bank="ops", document_id="copy", **fields)
        assert other["already_stored"] is False and other["memory_ids"] != first["memory_ids"]
        assert await banks(client) == {"ops": 2}


@pytest.mark.parametrize(
    "change",
    [
        {"occurred_at": "2024-05-10"},
        {"context": "retro"},
        {"tags": ["release", "friday"]},
        {"tags": []},
        {"metadata": {"n": 2}},
        {"metadata": {}},
        {"content": FACT + " Usually."},
    ],
)
async def test_memories_that_differ_in_any_field_are_kept_apart(pg_url: str, change: dict[str, Any]) -> None:
    base = {
        "content": FACT,
        "bank": "ops",
        "context": "standup",
        "occurred_at": "2024-05-03",
        "tags": ["release"],
        "metadata": {"n": 1},
    }
    async with in_process_client(pg_url, unique("apart")) as client:
        first = await call(client, "retain", **base)
        second = await call(client, "retain", **{**base, **change})
        assert second["already_stored"] is False
        assert second["memory_ids"] != first["memory_ids"] and second["document_id"] != first["document_id"]
        assert await banks(client) == {"ops": 2}


async def test_a_long_memory_retained_twice_is_stored_once(pg_url: str) -> None:
    content = " ".join(f"Paragraph {n} of the long note about the release train." for n in range(600))
    async with in_process_client(pg_url, unique("long")) as client:
        first = await call(client, "retain", content=content, bank="ops")
        assert len(first["memory_ids"]) > 1
        again = await call(client, "retain", content=content, bank="ops")
        assert again == {**first, "already_stored": True}
        # Same first chunk, different rest: another memory.
        changed = await call(client, "retain", content=content + " One more paragraph.", bank="ops")
        assert changed["already_stored"] is False


async def test_counts_in_texts_are_singular_and_plural_as_they_should_be(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("plural")) as client:
        await call(client, "retain", content="The only note.", bank="one")
        await call(client, "retain", content="A first note.", bank="two")
        await call(client, "retain", content="A second note.", bank="two")
        listed = await text_of(client, "list_banks")
        lines = [line.split(", last retained")[0] for line in listed.splitlines()]
        assert lines == ["one: 1 memory in 1 document", "two: 2 memories in 2 documents"]
        assert (await text_of(client, "retain", content="Another.", bank="one")).startswith("Retained 1 memory in")
        assert (await text_of(client, "recall", query="only note", bank="one")).startswith("1 memory from bank 'one'")
        assert await text_of(client, "forget", bank="one", document_id="none") == "Deleted 0 memories from bank 'one'."
