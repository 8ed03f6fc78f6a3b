"""The memory operations behind the tools: retain, recall, reflect, forget and list_banks, through an
MCP client connected in-process to a server on a schema of the test's own (auth off)."""

from __future__ import annotations

import pytest
from helpers import call, in_process_client, unique

pytestmark = pytest.mark.anyio


async def test_retain_then_recall_round_trips_every_field(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t")) as client:
        retained = await call(
            client,
            "retain",
            content="Alice moved to Lisbon in March and now works at a bakery.",
            bank="people",
            context="chat with Alice",
            occurred_at="2024-03-15T10:30:00+02:00",
            tags=["alice", "moves"],
            document_id="chat-1",
            metadata={"turn": "D1:3", "nested": {"n": [1, 2.5, True, None]}},
        )
        assert retained["bank"] == "people" and retained["document_id"] == "chat-1"
        assert len(retained["memory_ids"]) == 1
        recalled = await call(client, "recall", query="Where does Alice live?", bank="people")
    [memory] = recalled["memories"]
    assert memory["id"] == retained["memory_ids"][0]
    assert memory["text"] == "Alice moved to Lisbon in March and now works at a bakery."
    assert memory["context"] == "chat with Alice"
    assert memory["tags"] == ["alice", "moves"]
    assert memory["metadata"] == {"turn": "D1:3", "nested": {"n": [1, 2.5, True, None]}}
    assert memory["document_id"] == "chat-1"
    assert memory["score"] > 0
    from datetime import datetime

    assert datetime.fromisoformat(memory["occurred_at"]) == datetime.fromisoformat("2024-03-15T10:30:00+02:00")
    assert recalled["truncated"] is False


async def test_recall_ranks_and_filters(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t")) as client:
        await call(
            client, "retain", content="The deployment pipeline runs on Fridays.", tags=["ops"], occurred_at="2024-01-05"
        )
        await call(
            client,
            "retain",
            content="Deployment of the billing service failed twice.",
            tags=["ops", "billing"],
            occurred_at="2024-02-10",
        )
        await call(client, "retain", content="Bob likes green tea.", tags=["bob"], occurred_at="2024-03-01")
        both = await call(client, "recall", query="deployment")
        assert {m["text"] for m in both["memories"]} == {
            "The deployment pipeline runs on Fridays.",
            "Deployment of the billing service failed twice.",
        }
        prefix = await call(client, "recall", query="deploy")
        assert len(prefix["memories"]) == 2
        tagged = await call(client, "recall", query="deployment", tags=["billing"])
        assert [m["text"] for m in tagged["memories"]] == ["Deployment of the billing service failed twice."]
        windowed = await call(client, "recall", query="deployment", since="2024-02-01", until="2024-02-28")
        assert [m["text"] for m in windowed["memories"]] == ["Deployment of the billing service failed twice."]
        nothing = await call(client, "recall", query="quantum chromodynamics")
        assert nothing["memories"] == []


async def test_recall_honours_max_results_and_max_tokens(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t")) as client:
        for i in range(6):
            await call(client, "retain", content=f"Note {i} about the garden: " + "tomatoes " * (10 * (i + 1)))
        limited = await call(client, "recall", query="garden tomatoes", max_results=2)
        assert len(limited["memories"]) == 2 and limited["truncated"] is True
        budget = await call(client, "recall", query="garden tomatoes", max_tokens=60)
        total = sum(-(-len(m["text"].encode()) // 4) for m in budget["memories"])
        assert budget["memories"] and total <= 60 and budget["truncated"] is True


async def test_document_replacement_is_whole(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t")) as client:
        long_text = "\n\n".join(f"Paragraph {i}: the archive holds record {i}. " * 12 for i in range(8))
        first = await call(client, "retain", content=long_text, document_id="doc", bank="b")
        assert len(first["memory_ids"]) > 1
        second = await call(
            client, "retain", content="The archive was replaced by a single note.", document_id="doc", bank="b"
        )
        assert len(second["memory_ids"]) == 1
        recalled = await call(client, "recall", query="archive record", bank="b", max_results=50)
        assert [m["id"] for m in recalled["memories"]] == second["memory_ids"]
        banks = await call(client, "list_banks")
    assert banks["banks"] == [
        {"bank": "b", "memories": 1, "documents": 1, "last_retained_at": banks["banks"][0]["last_retained_at"]}
    ]


async def test_forget_by_id_and_by_document(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t")) as client:
        a = await call(client, "retain", content="The cat is named Miso.", bank="pets")
        b = await call(client, "retain", content="The dog is named Biscuit.", bank="pets", document_id="dog")
        gone = await call(client, "forget", bank="pets", memory_ids=a["memory_ids"])
        assert gone == {"deleted": 1}
        again = await call(client, "forget", bank="pets", memory_ids=a["memory_ids"])
        assert again == {"deleted": 0}
        assert (await call(client, "recall", query="cat Miso", bank="pets"))["memories"] == []
        assert (await call(client, "forget", bank="pets", document_id="dog")) == {"deleted": 1}
        assert (await call(client, "recall", query="dog", bank="pets"))["memories"] == []
        banks = await call(client, "list_banks")
        assert banks["banks"][0]["memories"] == 0 and banks["banks"][0]["documents"] == 0
        assert b["document_id"] == "dog"


async def test_reflect_cites_what_it_used(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t")) as client:
        kept = await call(client, "retain", content="Maria's favourite dessert is tiramisu. She bakes on Sundays.")
        await call(client, "retain", content="The office printer is on the third floor.")
        answer = await call(client, "reflect", query="What dessert does Maria like?")
        assert answer["mode"] == "extractive"
        assert answer["citations"] == kept["memory_ids"]
        assert "tiramisu" in answer["answer"]
        empty = await call(client, "reflect", query="zebra migration patterns")
        assert empty["citations"] == [] and empty["answer"]


async def test_only_retain_creates_a_bank(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("t")) as client:
        recalled = await call(client, "recall", query="x", bank="nope")
        assert recalled == {"bank": "nope", "memories": [], "truncated": False}
        reflected = await call(client, "reflect", query="x", bank="nope")
        assert reflected["citations"] == []
        assert await call(client, "forget", bank="nope", document_id="d") == {"deleted": 0}
        assert await call(client, "forget", bank="nope", whole_bank=True) == {"deleted": 0}
        assert (await call(client, "list_banks"))["banks"] == []
