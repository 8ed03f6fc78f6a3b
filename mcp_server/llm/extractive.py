"""The answer that needs no model: the evidence's sentences that share most words with the question.

Always available, and the floor every other synthesiser falls back to. It cites like a model
would (`[n]` after each memory's sentences), so one step finishes every answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

from mcp_server.llm.base import Evidence, Mode, Prompt
from mcp_server.llm.tokens import count_tokens

SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Words this short are mostly function words ("is", "at", "of"), and so are these: they would
# make every sentence look relevant to every question.
MIN_WORD_CHARS = 3
FUNCTION_WORDS = frozenset(
    WORD.findall(
        """
        the and for was were are did does has have had what when where who whom whose why how
        which with that this these those from into about than then there their they them she her
        his him you your our not but can could would should will its
        """
    )
)


def words(text: str) -> set[str]:
    """The lower-cased words of `text` long enough to carry meaning."""
    found = {w.lower() for w in WORD.findall(text) if len(w) >= MIN_WORD_CHARS}
    return found - FUNCTION_WORDS


# A sentence whose words are mostly (this share) in a sentence already quoted repeats it: the
# same fact retained twice, or restated with a word more ("Reminder: ...").
REPEAT_SHARE = 0.8


def all_words(sentence: str) -> frozenset[str]:
    """Every word of `sentence`, lower-cased: what it says, case, spacing and punctuation aside."""
    return frozenset(w.lower() for w in WORD.findall(sentence))


def repeats(sentence: frozenset[str], quoted: list[frozenset[str]]) -> bool:
    """True when `sentence` says nothing that one of the `quoted` sentences does not already say."""
    return any(len(sentence & other) >= REPEAT_SHARE * len(sentence) for other in quoted)


def spoken_date(day: date) -> str:
    """`8 May 2023`: the form people (and LoCoMo's answers) write dates in."""
    return f"{day.day} {day:%B %Y}"


# How much an answer quotes: at most this many memories, and only sentences scoring at least
# this share of the best one. On LoCoMo (bench/reflect.py, first conversation, 40 questions)
# quoting 1, 2 or 3 memories gave token F1 0.121, 0.109, 0.096 and citation precision 0.40,
# 0.29, 0.22; two keeps the second half of a two-part fact (multi-hop F1 0.025, 0.034, 0.031)
# at little cost, and every memory past that mostly cites what does not hold the answer.
QUOTED_MEMORIES = 2
RELEVANT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class _Sentence:
    score: float
    evidence: Evidence
    position: int
    text: str


def _candidates(question: str, evidence: tuple[Evidence, ...]) -> list[_Sentence]:
    """The evidence's sentences scored by the question words they share, each word weighted by how
    few sentences hold it: a name every memory mentions says little about which one answers."""
    wanted = words(question)
    split = [
        (item, position, text, words(text) & wanted)
        for item in evidence
        for position, text in enumerate(s.strip() for s in SENTENCE.findall(item.text))
        if text
    ]
    holding = Counter(word for *_, shared in split for word in shared)
    weight = {word: math.log(1 + len(split) / count) for word, count in holding.items()}
    found = [_Sentence(sum(weight[w] for w in shared), item, position, text) for item, position, text, shared in split]
    if not any(s.score for s in found):
        # Nothing shares a word: the memories matched on stems, prefixes or meaning, so trust
        # their rank and quote the best one.
        found = [_Sentence(1.0, s.evidence, s.position, s.text) for s in found if s.evidence.number == 1]
    best = max((s.score for s in found), default=0.0)
    return [s for s in found if s.score and s.score >= RELEVANT_SHARE * best]


def extract(question: str, evidence: tuple[Evidence, ...], max_tokens: int) -> str:
    """The answer: one line per memory quoted, best evidence first, each dated and cited.

    Sentences are taken by their score (ties to better-ranked memories), from at most
    `QUOTED_MEMORIES` memories, never one that repeats a sentence already taken, while the answer
    fits `max_tokens`; a memory's sentences keep their own order, and memories come in the order
    of their best sentence.
    """
    ranked = sorted(_candidates(question, evidence), key=lambda s: (-s.score, s.evidence.number, s.position))
    chosen: dict[int, list[_Sentence]] = {}
    quoted: list[frozenset[str]] = []
    used = 0
    for sentence in ranked:
        said = all_words(sentence.text)
        number = sentence.evidence.number
        if not said or repeats(said, quoted) or (number not in chosen and len(chosen) == QUOTED_MEMORIES):
            continue
        # A memory's first sentence also pays for its date and its citation.
        cost = count_tokens(sentence.text) + 1
        if number not in chosen:
            cost += count_tokens(_label(sentence.evidence) + f" [{number}]") + 1
        if used + cost > max_tokens:
            continue
        quoted.append(said)
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
