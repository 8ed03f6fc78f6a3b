"""Ranking: the full-text query, and fusing recall's signals into one score.

Every ranking constant lives here, measured on the LoCoMo development split (five
conversations, 762 questions of categories 1-4, turn-level recall_any@k). The fusion constants
are checked by leave-one-conversation-out (`bench/locomo.py --folds`): a coordinate-ascent
search on @10 over the values beside each constant, run on four conversations and scored on the
fifth, for each of the five. The figures beside each constant come from the run of 2026-12-06
with the local model's compact int8 build (`embedding.encoder_graph`): the constants score @10
0.846 in sample and 0.840 held out (mean over the five folds; @5 0.783 / 0.781, @50 0.933 /
0.939), so they generalise to within 0.01. Beside each constant: "held out" is what its piece
(turned off) adds @10 on the held-out conversations, with each fold's picks; "in sample" what it
adds on all five at the current values; "folds" in how many of the five the search picked the
value. The search on all five moves five values (to @10 0.858 in sample) that most folds do not
pick, so they stay. No rule looks at a conversation, a question or a name in the data.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import NamedTuple

from mcp_server.memory.time_hints import TimeHint
from mcp_server.store import Candidate

# -- the full-text query ----------------------------------------------------------------------

# Words of letters and digits (any script). Everything else, tsquery operators included, is a
# separator, so no caller text reaches `to_tsquery` as syntax.
WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_QUERY_TERMS = 64
# A query of this many words or fewer also matches words that start with them ("deploy" finds
# "deployment"), since a short query gives full-text search little else to go on.
PREFIX_QUERY_WORDS = 3
MIN_PREFIX_CHARS = 3

# -- candidates -------------------------------------------------------------------------------

# Memories taken from each leg (full-text, vector) before fusion; a recall asking for more
# results takes that many. Chosen for speed: 30 scores 0.846 @10 in sample, 50 and 100 0.848
# (folds: 30 in 1 of 5, 50 in 2, 100 in 2; the run before, with the earlier int8 build, had 30
# in 3 of 5 and equal @10 held out). Reading and fusing 30 instead of 50 per leg took recall at
# 100k from about 16 to 14 ms (bench/latency.py).
CANDIDATES_PER_LEG = 30
# A word in more memories of the schema than this (by the planner's statistics) is common: it
# picks full-text candidates only together with all the query's other words, so no query ranks
# tens of thousands of rows (at 100k memories, a word in one memory of five cost 180 ms). Every
# word still counts in the rank. Chosen for speed (ranking costs ~3 us a row); it changes
# nothing in schemas of a few thousand memories, LoCoMo's included.
COMMON_WORD_ROWS = 500
# Two memories are neighbours when one was retained right after the other in the same bank and
# within this time: turns of one conversation, facts noted in one sitting. An hour keeps a
# sitting together without joining what was retained on different occasions.
NEIGHBOUR_WINDOW = timedelta(hours=1)

# -- fusion -----------------------------------------------------------------------------------

# The full-text list ranks memories by the rarity of the query words each holds (see
# `word_weights`), and ts_rank only among memories holding equally rare words: ts_rank counts
# how often and how close the words occur, but not how rare they are, so a memory naming the
# person asked about twice outranked the one holding the question's other words. Held out
# +0.015 @10, in sample +0.025 (folds: 5 of 5).
WORD_RARITY = True
# Reciprocal-rank fusion: a list contributes weight / (RRF_K + rank). The usual k of 60 treats
# rank 1 and rank 10 almost alike; 5 trusts the top of each list (60: 0.735 @10 in sample
# against 0.846; 3 and 10 within 0.005). Folds: 5 in 4 of 5, 10 in one.
RRF_K = 5
# The three lists: full-text rank; cosine similarity; and cosine "in context", the similarity
# of the query to the memory together with the one retained before it (a reply is often only
# intelligible with the question before it). The context list: held out +0.006 @10, in sample
# +0.010 (folds: 0.5 in 4 of 5, 0.75 in one).
# The plain cosine list is not chosen on LoCoMo, where it helps in sample only (+0.003 @10, held
# out -0.015; folds: 0.5 in 4 of 5, 0 in one; a search started with it off picks 0.25 in 4 of 5
# and scores 0.842 held out against 0.840, +0.000 in sample and -0.003 held out). Every LoCoMo
# memory is a turn with a neighbour before it. A memory without one has a context cosine equal to
# its cosine, so this list is what weighs meaning as much as words (1.0 against the full-text
# list's 1.0) in a bank of separate facts, which LoCoMo cannot measure.
LEXICAL_WEIGHT = 1.0
SEMANTIC_WEIGHT = 0.5
CONTEXT_WEIGHT = 0.5
# How much the previous memory counts in the context similarity, against the memory itself.
# Folds: 1.0 in 4 of 5, 0.75 in one; 0.5-1.5 within 0.003 in sample.
CONTEXT_PREVIOUS = 1.0
# A memory also takes this share of its best neighbour's fused score: an answer sits next to
# the question that names its topic. Held out +0.024 @10, in sample +0.024 (folds: 0.4 in 3 of
# 5, 0.6 in 2; 0.6 scores 0.845 in sample).
NEIGHBOUR_SHARE = 0.4
# A memory found by vector alone must be at least this similar to the query: all-MiniLM-L6-v2
# puts unrelated sentences below ~0.25 and paraphrases above ~0.4. Not chosen on LoCoMo, where
# it does nothing (held out 0.000 @10, in sample -0.001; folds: 0.3 in 2 of 5, 0.2 in 2, 0 in
# one): it keeps unrelated memories out of a bank where nothing matches.
MIN_COSINE = 0.3
# Added when a memory falls in a period the query names (see time_hints): enough to lift it
# over memories without the date, as a fused score rarely exceeds 0.45. Held out +0.016 @10, in
# sample +0.021 (folds: 0.2 in 5 of 5).
TIME_HINT_BONUS = 0.2
# A named day also matches the days either side of it (time zones, "the night before"). Held
# out +0.001 @10, in sample +0.001 (folds: 5 of 5).
TIME_HINT_SLACK = timedelta(days=1)
# Added when a memory opens with a speaker label ("Alice: ...", the usual shape of a retained
# conversation turn) naming someone the query names: a question about a person is most often
# answered by what that person said. Held out +0.010 @10, in sample +0.014 (folds: 0.05 in 3 of
# 5, 0.1 in 2; 0.1 scores 0.845 in sample).
SPEAKER_BONUS = 0.05
# A speaker label: one to four capitalised words and a colon, at the very start of the text.
SPEAKER_LABEL = re.compile(r"\s*((?:[A-Z][\w'.-]*)(?: [A-Z][\w'.-]*){0,3}):\s")
# Newer memories win near-ties: a bonus halving every RECENCY_HALF_LIFE of age, counted from
# the newest candidate. Not chosen on LoCoMo, where questions span all sessions and it is
# about neutral (held out +0.001 @10, in sample +0.001; folds: 0.01 in 4 of 5, 0 in one): it is
# there so that a fact restated later ("moved to Porto") outranks the one it replaced.
RECENCY_WEIGHT = 0.01
RECENCY_HALF_LIFE = timedelta(days=30)


def _words(text: str) -> list[str]:
    return list(dict.fromkeys(w.lower() for w in WORD.findall(text)))[:MAX_QUERY_TERMS]


def lexical_terms(text: str) -> list[str]:
    """The `to_tsquery` terms of `text`, one a word (stop words included: the store drops them)."""
    words = _words(text)
    prefix = len(words) <= PREFIX_QUERY_WORDS
    return [f"{w}:*" if prefix and len(w) >= MIN_PREFIX_CHARS else w for w in words]


def lexical_query(text: str) -> str | None:
    """A `to_tsquery` expression matching any word of `text`, or None if it has no words."""
    return " | ".join(terms) if (terms := lexical_terms(text)) else None


def pruning_words(text: str) -> str | None:
    """The words whose commonest may be left out of candidate picking (None: keep them all).

    A short query matches by prefix and has few words to spare, so it is never pruned.
    """
    words = _words(text)
    return " ".join(words) if len(words) > PREFIX_QUERY_WORDS else None


class Signals(NamedTuple):
    """What a fused score is made of, for showing why a memory ranked where it did.

    `lexical` (with `word_weight`, the rarity of the query words the memory holds, which ranks
    first), `cosine` and `context_cosine` are the raw values ranked; `fused` the sum of their
    reciprocal ranks (weighted); the rest are what was added to it. `score` adds them up in the
    order fusion does, so it equals the score exactly.
    """

    lexical: float | None
    word_weight: float
    cosine: float | None
    context_cosine: float | None
    fused: float
    neighbour: float
    date_bonus: float
    speaker_bonus: float
    recency: float


class Ranked(NamedTuple):
    """A candidate with its fused score and the signals behind it (named tuples: fusion makes
    one of each per candidate kept, a frozen dataclass costing nearly three times as much)."""

    candidate: Candidate
    score: float
    signals: Signals


def _ranks(values: dict[int, tuple[float, ...]]) -> dict[int, float]:
    """1-based ranks by value (compared in order), best first; tied values share the mean of their places.

    Full-text ranks of short memories tie often; sharing the rank gives tied memories equal
    credit instead of an arbitrary order (+0.006 @10 over breaking ties oldest first; newest
    first scores +0.003, an order that holds only for data retained in order).
    """
    ordered = sorted(values.items(), key=itemgetter(1), reverse=True)
    ranks: dict[int, float] = {}
    start, count = 0, len(ordered)
    while start < count:
        value, end = ordered[start][1], start + 1
        while end < count and ordered[end][1] == value:
            end += 1
        shared = start + (end - start + 1) / 2
        for seq, _ in ordered[start:end]:
            ranks[seq] = shared
        start = end
    return ranks


def context_cosine(candidate: Candidate, previous: float = CONTEXT_PREVIOUS) -> float | None:
    """Similarity of the query to the memory and the one before it, as if embedded together.

    Approximated from the two vectors: the normalised sum of v and g*p (g = `previous`) has
    cosine (q.v + g q.p) / |v + g p| with the query, and |v + g p|^2 = 1 + g^2 + 2g v.p.
    """
    if candidate.cosine is None:
        return None
    if candidate.prev_cosine is None or candidate.prev_similarity is None:
        return candidate.cosine
    g = previous
    norm = math.sqrt(max(1 + g * g + 2 * g * candidate.prev_similarity, 1e-6))
    return (candidate.cosine + g * candidate.prev_cosine) / norm


@dataclass(frozen=True, slots=True)
class Fusion:
    """The constants `fuse` ranks by; the defaults are the module's, so a benchmark can try others."""

    rrf_k: float = RRF_K
    lexical_weight: float = LEXICAL_WEIGHT
    semantic_weight: float = SEMANTIC_WEIGHT
    context_weight: float = CONTEXT_WEIGHT
    context_previous: float = CONTEXT_PREVIOUS
    neighbour_share: float = NEIGHBOUR_SHARE
    min_cosine: float = MIN_COSINE
    time_hint_bonus: float = TIME_HINT_BONUS
    time_hint_slack: timedelta = TIME_HINT_SLACK
    speaker_bonus: float = SPEAKER_BONUS
    word_rarity: bool = WORD_RARITY
    recency_weight: float = RECENCY_WEIGHT
    recency_half_life: timedelta = RECENCY_HALF_LIFE


FUSION = Fusion()


def speaker_words(text: str) -> set[str]:
    """The lowercased words of the speaker label `text` opens with, if any."""
    label = SPEAKER_LABEL.match(text)
    return {w.lower() for w in WORD.findall(label.group(1)) if len(w) > 1} if label else set()


def _when(candidate: Candidate) -> datetime:
    memory = candidate.memory
    return memory.occurred_at or memory.retained_at


def word_weights(candidates: Sequence[Candidate]) -> dict[int, float]:
    """Per candidate (by seq), the rarity of the query words it holds, summed.

    A word's rarity is BM25's inverse document frequency counted among the candidates: a word
    most of them hold (a name in a conversation with that person, a bank's topic) says little
    about which of them answers. Counting among the candidates rather than the bank costs no
    query and follows the bank as it is searched: tags and time windows included.
    """
    held = Counter(term for c in candidates for term in c.matched)
    n = len(candidates)
    rarity = {term: math.log(1 + (n - count + 0.5) / (count + 0.5)) for term, count in held.items()}
    return {c.memory.seq: sum(rarity[term] for term in c.matched) for c in candidates}


def fuse(
    candidates: Sequence[Candidate], query: str = "", hints: Sequence[TimeHint] = (), fusion: Fusion = FUSION
) -> list[Ranked]:
    """Rank candidates best first by the fused score; drop those that match too weakly."""
    f = fusion
    query_words = {w.lower() for w in WORD.findall(query)}
    by_seq = {c.memory.seq: c for c in candidates}
    weights = word_weights(candidates) if f.word_rarity else {}
    contexts = {s: context_cosine(c, f.context_previous) for s, c in by_seq.items()}
    # What each candidate's signals show is the context cosine at the module's constant.
    shown = contexts if f.context_previous == CONTEXT_PREVIOUS else None
    lists: tuple[tuple[float, dict[int, tuple[float, ...]]], ...] = (
        (
            f.lexical_weight,
            {s: (weights.get(s, 0.0), c.lexical) for s, c in by_seq.items() if c.lexical is not None and c.lexical > 0},
        ),
        (f.semantic_weight, {s: (c.cosine,) for s, c in by_seq.items() if c.cosine is not None}),
        (
            f.context_weight,
            {s: (x,) for s, x in contexts.items() if x is not None},
        ),
    )
    base = dict.fromkeys(by_seq, 0.0)
    for weight, values in lists:
        if weight:
            for seq, rank in _ranks(values).items():
                base[seq] += weight / (f.rrf_k + rank)
    newest = max((_when(c) for c in candidates), default=None)
    ranked: list[Ranked] = []
    for seq, candidate in by_seq.items():
        found_by_words = candidate.lexical is not None and candidate.lexical > 0
        if not found_by_words and (candidate.cosine is None or candidate.cosine < f.min_cosine):
            continue
        # Fused scores are never negative, so a missing neighbour counts as 0.
        before, after = candidate.prev_seq, candidate.next_seq
        neighbour = f.neighbour_share * max(
            base.get(before, 0.0) if before is not None else 0.0, base.get(after, 0.0) if after is not None else 0.0
        )
        score = base[seq] + neighbour
        when = _when(candidate)
        date_bonus = speaker_bonus = recency = 0.0
        if hints and any(hint.matches(when, f.time_hint_slack) for hint in hints):
            date_bonus = f.time_hint_bonus
            score += date_bonus
        if query_words and speaker_words(candidate.memory.text) & query_words:
            speaker_bonus = f.speaker_bonus
            score += speaker_bonus
        if newest is not None:
            recency = f.recency_weight * 0.5 ** ((newest - when) / f.recency_half_life)
            score += recency
        signals = Signals(
            lexical=candidate.lexical,
            word_weight=weights.get(seq, 0.0),
            cosine=candidate.cosine,
            context_cosine=shown[seq] if shown is not None else context_cosine(candidate),
            fused=base[seq],
            neighbour=neighbour,
            date_bonus=date_bonus,
            speaker_bonus=speaker_bonus,
            recency=recency,
        )
        ranked.append(Ranked(candidate, score, signals))
    ranked.sort(key=lambda r: (-r.score, -r.candidate.memory.seq))
    return ranked
