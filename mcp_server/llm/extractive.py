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
    never one that repeats a sentence already taken, while the answer fits `max_tokens`; a memory's sentences
    keep their own order, and memories come in the order of their best sentence.
    """
    ranked = sorted(_candidates(question, evidence), key=lambda s: (-s.overlap, s.evidence.number, s.position))
    chosen: dict[int, list[_Sentence]] = {}
    quoted: list[frozenset[str]] = []
    used = 0
    for sentence in ranked:
        said = all_words(sentence.text)
        if not said or repeats(said, quoted):
            continue
        number = sentence.evidence.number
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
