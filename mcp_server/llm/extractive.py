"""The answer that needs no model: the evidence's sentences that share most words with the question.

Always available, and the floor every other synthesiser falls back to. It cites like a model
would (`[n]` after each memory's sentences), so one step finishes every answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from mcp_server.llm.base import Evidence, Mode, Prompt
from mcp_server.llm.tokens import count_tokens

SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Words this short are mostly function words ("is", "at", "of"): they would make every
# sentence look relevant.
MIN_WORD_CHARS = 3


def words(text: str) -> set[str]:
    """The lower-cased words of `text` long enough to carry meaning."""
    return {w.lower() for w in WORD.findall(text) if len(w) >= MIN_WORD_CHARS}


def same_sentence_key(sentence: str) -> str:
    """What two sentences share when they say the same thing: words, case and spacing aside."""
    return " ".join(w.lower() for w in WORD.findall(sentence))


def spoken_date(day: date) -> str:
    """`8 May 2023`: the form people (and LoCoMo's answers) write dates in."""
    return f"{day.day} {day:%B %Y}"


@dataclass(frozen=True, slots=True)
class _Sentence:
    overlap: int
    evidence: Evidence
    position: int
    text: str


def _candidates(question: str, evidence: tuple[Evidence, ...]) -> list[_Sentence]:
    wanted = words(question)
    found = [
        _Sentence(len(wanted & words(text)), item, position, text)
        for item in evidence
        for position, text in enumerate(s.strip() for s in SENTENCE.findall(item.text))
        if text
    ]
    if not any(s.overlap for s in found):
        # Nothing shares a word: the memories matched on stems, prefixes or meaning, so trust
        # their rank and quote the best one.
        found = [_Sentence(1, s.evidence, s.position, s.text) for s in found if s.evidence.number == 1]
    return [s for s in found if s.overlap]


def extract(question: str, evidence: tuple[Evidence, ...], max_tokens: int) -> str:
    """The answer: one line per memory quoted, best evidence first, each dated and cited.

    Sentences are taken by words shared with the question (ties to better-ranked memories),
    never the same sentence twice, while the answer fits `max_tokens`; a memory's sentences
    keep their own order, and memories come in the order of their best sentence.
    """
    ranked = sorted(_candidates(question, evidence), key=lambda s: (-s.overlap, s.evidence.number, s.position))
    chosen: dict[int, list[_Sentence]] = {}
    seen: set[str] = set()
    used = 0
    for sentence in ranked:
        key = same_sentence_key(sentence.text)
        if key in seen:
            continue
        number = sentence.evidence.number
        # A memory's first sentence also pays for its date and its citation.
        cost = count_tokens(sentence.text) + 1
        if number not in chosen:
            cost += count_tokens(_label(sentence.evidence) + f" [{number}]") + 1
        if used + cost > max_tokens:
            continue
        seen.add(key)
        chosen.setdefault(number, []).append(sentence)
        used += cost
    lines = []
    for sentences in chosen.values():  # insertion order: by each memory's best sentence
        item = sentences[0].evidence
        text = " ".join(s.text for s in sorted(sentences, key=lambda s: s.position))
        lines.append(f"{_label(item)}{text} [{item.number}]")
    return "\n".join(lines)


def _label(item: Evidence) -> str:
    return f"{spoken_date(item.dated)}: " if item.dated else ""


class ExtractiveSynthesiser:
    """Quotes the evidence; needs nothing and never fails."""

    @property
    def mode(self) -> Mode:
        return "extractive"

    async def synthesise(self, prompt: Prompt) -> str:
        return extract(prompt.question, prompt.evidence, prompt.max_tokens)

    async def aclose(self) -> None:
        return None
