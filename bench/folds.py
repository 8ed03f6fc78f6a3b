"""Leave-one-conversation-out for recall's ranking constants (`bench/locomo.py --folds`).

Each conversation is retained once, in process, the way the plain bench retains it (one call per
turn, in order). Each question's candidates (what `store.search` returns for it) are captured
once for every candidate count tried; the fusion constants are then tried by fusing those
candidates again, in process, which is what makes trying dozens of values cheap.

Selection: for each fold (four conversations to tune on, the fifth held out), coordinate ascent
from the current constants on the four by recall_any@10 (ties keep the current value, else the
smaller), two passes; the constants it picks are scored on the fifth. The same search on all
five is what the constants in `memory/ranking.py` should be. A piece whose "off" value scores
as well on the held-out conversations only fits the data in sample.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

from mcp_server.memory.ranking import FUSION, Fusion, fuse
from mcp_server.memory.time_hints import TimeHint
from mcp_server.store import Candidate

KS = (5, 10, 50)
DAY = timedelta(days=1)

# The values tried beside each constant (GRID order is the search's order), and for those that
# switch a piece on, the value that switches it off (OFF). `per_leg` changes the candidates
# themselves, so each of its values is captured rather than fused again.
GRID: dict[str, Sequence[Any]] = {
    "per_leg": (30, 50, 100),
    "rrf_k": (1, 3, 5, 10, 20, 60),
    "semantic_weight": (0.0, 0.25, 0.5, 0.75, 1.0),
    "context_weight": (0.0, 0.25, 0.5, 0.75, 1.0),
    "context_previous": (0.5, 0.75, 1.0, 1.5),
    "neighbour_share": (0.0, 0.2, 0.4, 0.6),
    "min_cosine": (0.0, 0.2, 0.3, 0.4),
    "time_hint_bonus": (0.0, 0.1, 0.2, 0.3),
    "time_hint_slack": (0 * DAY, 1 * DAY, 2 * DAY),
    "speaker_bonus": (0.0, 0.025, 0.05, 0.1),
    "word_rarity": (False, True),
    "recency_weight": (0.0, 0.01, 0.03),
}
OFF: dict[str, Any] = {
    "semantic_weight": 0.0,
    "context_weight": 0.0,
    "neighbour_share": 0.0,
    "min_cosine": 0.0,
    "time_hint_bonus": 0.0,
    "time_hint_slack": 0 * DAY,
    "speaker_bonus": 0.0,
    "word_rarity": False,
    "recency_weight": 0.0,
}


@dataclass(frozen=True, slots=True)
class Captured:
    """One question, with the candidates the store returned for it at each candidate count."""

    conversation: str
    category: int
    text: str
    hints: Sequence[TimeHint]
    evidence: frozenset[str]
    candidates: dict[int, list[Candidate]]


Hits = dict[int, int]
"""Per k: how many questions were hit at k."""


def current(per_leg: int) -> dict[str, Any]:
    """The constants as they stand, by name."""
    values: dict[str, Any] = {f.name: getattr(FUSION, f.name) for f in fields(Fusion)}
    values["per_leg"] = per_leg
    return values


def rankings(questions: Sequence[Captured], settings: dict[str, Any]) -> list[list[str]]:
    """For each question, the turns of its first results when ranking with `settings`."""
    fusion = Fusion(**{k: v for k, v in settings.items() if k != "per_leg"})
    return [
        [
            r.candidate.memory.metadata.get("turn")
            for r in fuse(q.candidates[settings["per_leg"]], q.text, q.hints, fusion)[: max(KS)]
        ]
        for q in questions
    ]


class Scores:
    """Hits of each conversation under each setting tried, each computed once."""

    def __init__(self, questions: Sequence[Captured]) -> None:
        self.by_conversation: dict[str, list[Captured]] = {}
        for q in questions:
            self.by_conversation.setdefault(q.conversation, []).append(q)
        self.names = list(self.by_conversation)
        self.sizes = {name: len(qs) for name, qs in self.by_conversation.items()}
        self._hits: dict[tuple[str, tuple[tuple[str, Any], ...]], Hits] = {}

    @property
    def rankings_done(self) -> int:
        return len(self._hits)

    def hits(self, settings: dict[str, Any], conversation: str) -> Hits:
        key = (conversation, tuple(sorted(settings.items())))
        if key not in self._hits:
            questions = self.by_conversation[conversation]
            found = dict.fromkeys(KS, 0)
            for q, turns in zip(questions, rankings(questions, settings), strict=True):
                for k in KS:
                    found[k] += bool(q.evidence & set(turns[:k]))
            self._hits[key] = found
        return self._hits[key]

    def rate(self, settings: dict[str, Any], conversations: Iterable[str], k: int) -> float:
        """recall_any@k over the questions of `conversations`, pooled."""
        names = list(conversations)
        return sum(self.hits(settings, c)[k] for c in names) / sum(self.sizes[c] for c in names)


def pick(values: Sequence[Any], default: Any, scores: list[float]) -> Any:
    """The value that scores best; ties go to the current value, then to the earlier (smaller)."""
    best = max(scores)
    tied = [v for v, t in zip(values, scores, strict=True) if t == best]
    return default if default in tied else tied[0]


def ascend(scores: Scores, start: dict[str, Any], conversations: Sequence[str]) -> dict[str, Any]:
    """Coordinate ascent on @10 over `conversations`: each constant in turn (GRID order) takes its
    best value given those already picked; two passes, so early picks see later ones."""
    settings = dict(start)
    for _ in range(2):
        for name, values in GRID.items():
            tried = [scores.rate({**settings, name: v}, conversations, 10) for v in values]
            settings[name] = pick(values, settings[name], tried)
    return settings


def shown(value: Any) -> str:
    if isinstance(value, timedelta):
        return f"{value / DAY:g}d"
    return f"{value:g}" if isinstance(value, float) else str(value)


def folds(questions: Sequence[Captured], per_leg: int) -> None:
    """Print in-sample and held-out figures, and what each constant does out of sample."""
    started = time.perf_counter()
    scores = Scores(questions)
    names, sizes = scores.names, scores.sizes
    base = current(per_leg)
    chosen = {held: ascend(scores, base, [c for c in names if c != held]) for held in names}
    everywhere = ascend(scores, base, names)
    print()
    print("Leave-one-conversation-out (tune on four conversations, score the fifth), recall_any@k")
    print(
        f"{'held out':10}{'n':>5}"
        + "".join(f"{'in @' + str(k):>9}{'out @' + str(k):>10}" for k in KS)
        + f"{'train @10':>11}"
    )
    for held in names:
        training = [c for c in names if c != held]
        row = f"{held:10}{sizes[held]:>5}"
        for k in KS:
            row += f"{scores.rate(base, [held], k):>9.3f}{scores.rate(chosen[held], [held], k):>10.3f}"
        print(row + f"{scores.rate(chosen[held], training, 10):>11.3f}")
    for label, pooled in (("mean", False), ("pooled", True)):
        row = f"{label:10}{sum(sizes.values()) if pooled else '':>5}"
        for k in KS:
            if pooled:
                inside = scores.rate(base, names, k)
                outside = sum(scores.hits(chosen[c], c)[k] for c in names) / sum(sizes.values())
            else:
                inside = statistics.mean(scores.rate(base, [c], k) for c in names)
                outside = statistics.mean(scores.rate(chosen[c], [c], k) for c in names)
            row += f"{inside:>9.3f}{outside:>10.3f}"
        print(row)
    print("  in: the current constants on this conversation (in sample: they were chosen on all five);")
    print("  out: the constants the same search picks on the other four, on this one; train: those on the four")
    print()
    print("Per constant: the value picked on all five and on each fold's four; @10 on all five at the current")
    print("values with just this one changed; and what its piece (turned off: OFF) gains in sample (all five,")
    print("current values) and held out (each fold's picks, scored on its fifth; mean over folds)")
    print(
        f"{'constant':18}{'current':>9}{'all five':>9}  {'picked per fold':24}{'gain in':>8}{'out':>7}  landscape @10"
    )
    for name, values in GRID.items():
        picked = ",".join(shown(chosen[held][name]) for held in names)
        gain = f"{'':15}"
        if name in OFF:
            inside = scores.rate(base, names, 10) - scores.rate({**base, name: OFF[name]}, names, 10)
            outside = statistics.mean(
                scores.rate(chosen[h], [h], 10) - scores.rate({**chosen[h], name: OFF[name]}, [h], 10) for h in names
            )
            gain = f"{inside:>+8.3f}{outside:>+7.3f}"
        landscape = " ".join(f"{shown(v)}:{scores.rate({**base, name: v}, names, 10):.3f}" for v in values)
        print(f"{name:18}{shown(base[name]):>9}{shown(everywhere[name]):>9}  {picked:24}{gain}  {landscape}")
    print(
        f"  all five, picked: @5 {scores.rate(everywhere, names, 5):.3f}  @10 {scores.rate(everywhere, names, 10):.3f}"
        f"  @50 {scores.rate(everywhere, names, 50):.3f} (in sample)"
    )
    elapsed = time.perf_counter() - started
    print(f"({scores.rankings_done} rankings of one conversation's questions in {elapsed:.0f} s)")


async def capture(
    conversations: Sequence[Any], per_legs: Sequence[int], data_dir: str | None, embedder_name: str | None
) -> list[Captured]:
    """Retain every conversation once, in process, and capture each question's candidates."""
    from mcp_server.config import load_settings
    from mcp_server.memory import operations
    from mcp_server.memory.time_hints import time_hints
    from mcp_server.runtime import open_runtime
    from mcp_server.tenancy import TenantDirectory

    overrides: dict[str, Any] = {"default_schema": f"locomo_folds_{os.getpid()}", "auth_disabled": True}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if embedder_name:
        overrides["embedder"] = embedder_name
    settings = load_settings(**overrides)
    captured: list[Captured] = []
    async with open_runtime(settings, TenantDirectory.from_settings(settings)) as runtime:
        store = await runtime.stores.for_schema(settings.default_schema)
        embedder = runtime.embedder
        for conversation in conversations:
            bank = f"locomo-{conversation.name}"
            started = time.perf_counter()
            for turn in conversation.turns:
                await operations.retain(
                    store,
                    content=turn.content,
                    bank=bank,
                    max_content_bytes=settings.max_content_bytes,
                    occurred_at=turn.occurred_at,
                    document_id=turn.turn_id,
                    metadata={"turn": turn.turn_id},
                    embedder=embedder,
                )
            for question in conversation.questions:
                text = question.text.strip()
                request = operations.search_request(text, bank=bank, max_results=max(KS))
                if embedder is not None and store.has_vectors:
                    request = replace(request, vector=await embedder.embed_query(text, namespace=store.schema))
                candidates = {n: await store.search(replace(request, per_leg=n)) for n in per_legs}
                captured.append(
                    Captured(
                        conversation.name,
                        question.category,
                        text,
                        time_hints(text),
                        frozenset(question.evidence),
                        candidates,
                    )
                )
            print(
                f"  {conversation.name}: {len(conversation.turns)} turns retained, "
                f"{len(conversation.questions)} questions captured ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
    return captured
