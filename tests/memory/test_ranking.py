"""Fusion: ranks, floors, neighbours, speakers and named days, on fixed inputs (no database, no model)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from mcp_server.memory import ranking
from mcp_server.memory.ranking import Fusion, context_cosine, fuse, speaker_words, word_weights
from mcp_server.memory.time_hints import time_hints
from mcp_server.store import Candidate, StoredMemory

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def candidate(
    seq: int,
    *,
    text: str = "",
    lexical: float | None = None,
    cosine: float | None = None,
    prev: int | None = None,
    prev_cosine: float | None = None,
    prev_similarity: float | None = None,
    next_seq: int | None = None,
    occurred_at: datetime | None = None,
    matched: frozenset[int] = frozenset(),
) -> Candidate:
    memory = StoredMemory(
        id=uuid.uuid4(),
        seq=seq,
        text=text or f"memory {seq}",
        context=None,
        tags=[],
        metadata={},
        occurred_at=occurred_at,
        retained_at=NOW,
        document_id=f"d{seq}",
    )
    return Candidate(memory, lexical, cosine, prev, prev_cosine, prev_similarity, next_seq, matched)


def order(ranked: list[ranking.Ranked]) -> list[int]:
    return [r.candidate.memory.seq for r in ranked]


def test_a_memory_first_in_both_lists_wins_and_scores_are_rrf_sums() -> None:
    ranked = fuse(
        [
            candidate(1, lexical=0.2, cosine=0.50),
            candidate(2, lexical=0.9, cosine=0.80),
            candidate(3, lexical=None, cosine=0.60),
        ]
    )
    # 1: full-text 2nd, vectors 3rd; 3: vectors 2nd only. Two lists beat one.
    assert order(ranked) == [2, 1, 3]
    k = ranking.RRF_K
    top = ranking.LEXICAL_WEIGHT / (k + 1) + (ranking.SEMANTIC_WEIGHT + ranking.CONTEXT_WEIGHT) / (k + 1)
    assert abs(ranked[0].score - top - ranking.RECENCY_WEIGHT) < 1e-9
    assert ranked[0].score > ranked[1].score > ranked[2].score


def test_vector_only_matches_below_the_floor_are_dropped() -> None:
    floor = ranking.MIN_COSINE
    ranked = fuse(
        [
            candidate(1, cosine=floor - 0.01),
            candidate(2, cosine=floor + 0.01),
            candidate(3, lexical=0.1, cosine=0.0),
        ]
    )
    assert sorted(order(ranked)) == [2, 3]


def test_tied_full_text_ranks_share_their_place() -> None:
    ranked = fuse([candidate(1, lexical=0.5), candidate(2, lexical=0.5), candidate(3, lexical=0.1)])
    scores = {r.candidate.memory.seq: r.score for r in ranked}
    assert scores[1] == scores[2] > scores[3]
    assert abs(scores[1] - ranking.RECENCY_WEIGHT - ranking.LEXICAL_WEIGHT / (ranking.RRF_K + 1.5)) < 1e-9
    # Equal scores: the newer memory first.
    assert order(ranked)[:2] == [2, 1]


def test_rare_query_words_rank_before_frequent_common_ones() -> None:
    # Query term 0 (say, a name) is in every memory, term 1 in one; ts_rank prefers the memory
    # holding term 0 most often.
    items = [
        candidate(1, lexical=0.6, matched=frozenset({0})),
        candidate(2, lexical=0.3, matched=frozenset({0, 1})),
        candidate(3, lexical=0.3, matched=frozenset({0})),
        candidate(4, lexical=0.2, matched=frozenset({0})),
    ]
    weights = word_weights(items)
    assert weights[2] > weights[1] == weights[3] == weights[4] > 0
    # Equally rare words: ts_rank decides.
    assert order(fuse(items)) == [2, 1, 3, 4]
    assert order(fuse(items, fusion=Fusion(word_rarity=False)))[0] == 1


def test_a_neighbour_of_a_strong_match_is_lifted() -> None:
    plain = [candidate(1, lexical=0.9, cosine=0.9), candidate(5, lexical=0.3), candidate(6, lexical=0.3)]
    assert order(fuse(plain))[1:] == [6, 5]
    plain[1] = candidate(5, lexical=0.3, prev=1)
    assert order(fuse(plain))[1:] == [5, 6]


def test_context_cosine_counts_the_previous_memory() -> None:
    alone = candidate(2, cosine=0.2)
    assert context_cosine(alone) == 0.2
    after_question = candidate(2, cosine=0.2, prev=1, prev_cosine=0.8, prev_similarity=0.0)
    assert abs(context_cosine(after_question) - (0.2 + 0.8) / 2**0.5) < 1e-9  # type: ignore[operator]
    assert context_cosine(candidate(2, lexical=1.0)) is None


def test_named_day_and_speaker_lift_their_memories() -> None:
    day = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
    items = [
        candidate(1, text="Bob: the cake was great", lexical=0.5, occurred_at=day - timedelta(days=40)),
        candidate(2, text="Ann: the cake was great", lexical=0.4, occurred_at=day - timedelta(days=40)),
        candidate(3, text="Ann: I baked on Monday", lexical=0.1, occurred_at=day),
    ]
    assert order(fuse(items, "cake"))[0] == 1
    assert order(fuse(items, "What cake did Ann like?"))[0] == 2
    assert order(fuse(items, "What did Ann bake on 8 May, 2023?", time_hints("on 8 May, 2023")))[0] == 3


def test_speaker_labels() -> None:
    assert speaker_words("Caroline: I went to the support group.") == {"caroline"}
    assert speaker_words("Dr. Ruth Smith: take two") == {"dr", "ruth", "smith"}
    assert speaker_words("the meeting ran late: no label") == set()
    assert speaker_words("Note 12 about the garden: tomatoes") == set()
