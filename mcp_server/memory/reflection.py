"""reflect: gather memories with recall, then answer from them, citing the ids used."""

from __future__ import annotations

import re

from mcp_server.embedding import Embedder
from mcp_server.memory import validation as check
from mcp_server.memory.arguments import MAX_TOKENS
from mcp_server.memory.budget import count_tokens
from mcp_server.memory.models import RecalledMemory, ReflectResult
from mcp_server.memory.operations import recall
from mcp_server.memory.ranking import WORD
from mcp_server.store import TenantStore

# How many memories an answer may draw on: enough to combine a few facts, few enough to stay on
# the question.
REFLECT_MEMORIES = 8
SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def _words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text) if len(w) > 2}


def extractive_answer(query: str, memories: list[RecalledMemory], max_tokens: int) -> tuple[str, list[str]]:
    """Pick the sentences of the best memories that share most words with the query.

    Sentences are scored by words shared with the query, ties going to better-ranked memories;
    the chosen ones are put back in rank order and cut to `max_tokens`.
    """
    wanted = _words(query)
    scored: list[tuple[int, int, int, str, str]] = []
    for rank, memory in enumerate(memories):
        for position, sentence in enumerate(s.strip() for s in SENTENCE.findall(memory.text)):
            if sentence:
                overlap = len(wanted & _words(sentence))
                scored.append((overlap, rank, position, sentence, memory.id))
    if not any(overlap for overlap, *_ in scored):
        # Nothing shares a word: the memories matched on stems or prefixes, so trust their rank.
        scored = [(1, r, p, s, i) for _, r, p, s, i in scored if r == 0]
    chosen: list[tuple[int, int, str, str]] = []
    used = 0
    for overlap, rank, position, sentence, memory_id in sorted(scored, key=lambda s: (-s[0], s[1], s[2])):
        if overlap == 0:
            break
        cost = count_tokens(sentence) + 1
        if used + cost > max_tokens:
            continue
        chosen.append((rank, position, sentence, memory_id))
        used += cost
    chosen.sort()
    answer = " ".join(sentence for _, _, sentence, _ in chosen)
    citations = list(dict.fromkeys(memory_id for _, _, _, memory_id in chosen))
    return answer, citations


async def reflect(
    store: TenantStore, *, query: str, bank: str, max_tokens: int = 1024, embedder: Embedder | None = None
) -> ReflectResult:
    """Answer `query` from the bank's memories (extractively), citing the memories used."""
    check.max_tokens(max_tokens)
    found = await recall(
        store, query=query, bank=bank, max_results=REFLECT_MEMORIES, max_tokens=MAX_TOKENS, embedder=embedder
    )
    answer, citations = extractive_answer(query, found.memories, max_tokens)
    if not citations:
        answer = f"No memories in bank {found.bank!r} answer this question."
    return ReflectResult(answer=answer, citations=citations, mode="extractive")
