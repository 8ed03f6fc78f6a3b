"""The signals behind each fused score, as the recall debugger shows them: they add up to the
score exactly, and exposing them changed no ranking."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from helpers import call, in_process_client, unique
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_server.memory.ranking import SPEAKER_BONUS, TIME_HINT_BONUS, context_cosine, fuse
from mcp_server.memory.time_hints import time_hints
from mcp_server.store import Candidate, StoredMemory

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SPEAKERS = ["Ann: ", "Bob: ", ""]


@st.composite
def candidate_sets(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(1, 12))
    maybe = st.one_of(st.none(), st.floats(0.0, 1.0))
    found = []
    for seq in range(1, count + 1):
        memory = StoredMemory(
            id=uuid.uuid4(),
            seq=seq,
            text=draw(st.sampled_from(SPEAKERS)) + f"memory {seq}",
            context=None,
            tags=[],
            metadata={},
            occurred_at=NOW - timedelta(days=draw(st.integers(0, 90))),
            retained_at=NOW,
            document_id="d",
        )
        linked = draw(st.booleans()) and seq > 1
        found.append(
            Candidate(
                memory=memory,
                lexical=draw(maybe),
                cosine=draw(maybe),
                prev_seq=seq - 1 if linked else None,
                prev_cosine=draw(maybe) if linked else None,
                prev_similarity=draw(maybe) if linked else None,
                next_seq=seq + 1 if draw(st.booleans()) and seq < count else None,
            )
        )
    return found


@settings(max_examples=200, deadline=None)
@given(candidate_sets(), st.sampled_from(["", "What did Ann say?", "What happened on 20 May, 2024?"]))
def test_the_signals_add_up_to_the_score_exactly(candidates: list[Candidate], query: str) -> None:
    ranked = fuse(candidates, query, time_hints(query))
    for r in ranked:
        s = r.signals
        assert s.fused + s.neighbour + s.date_bonus + s.speaker_bonus + s.recency == r.score
        assert (s.lexical, s.cosine) == (r.candidate.lexical, r.candidate.cosine)
        assert s.context_cosine == context_cosine(r.candidate)
        assert s.neighbour >= 0 and s.recency >= 0
        assert s.date_bonus in (0.0, TIME_HINT_BONUS) and s.speaker_bonus in (0.0, SPEAKER_BONUS)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


@pytest.mark.anyio
async def test_the_debugger_ranks_exactly_as_the_recall_tool(pg_url: str) -> None:
    from mcp_server.config import load_settings
    from mcp_server.memory.operations import recall_ranked
    from mcp_server.runtime import open_runtime
    from mcp_server.tenancy import TenantDirectory

    schema = unique("signals")
    facts = [
        "Ann: the kiln reached 1200 degrees on Tuesday.",
        "Bob: did the glaze survive the firing?",
        "Ann: yes, the celadon came out clear.",
        "The studio rent is due on the first of each month.",
    ]
    async with in_process_client(pg_url, schema, embedder="local") as client:
        for fact in facts:
            await call(client, "retain", bank="studio", content=fact)
        tool = await call(client, "recall", bank="studio", query="What did Ann say about the glaze?")
    settings_ = load_settings(_env_file=None, database_url=pg_url, default_schema=schema, embedder="local")
    directory = TenantDirectory.from_settings(settings_)
    async with open_runtime(settings_, directory) as runtime:
        store = await runtime.store_for(directory.default)
        found = await recall_ranked(
            store, query="What did Ann say about the glaze?", bank="studio", embedder=runtime.embedder
        )
    assert [str(r.candidate.memory.id) for r in found.ranked] == [m["id"] for m in tool["memories"]]
    assert [round(r.score, 6) for r in found.ranked] == [m["score"] for m in tool["memories"]]
    assert any(r.signals.cosine for r in found.ranked) and any(r.signals.speaker_bonus for r in found.ranked)
