"""Leave-one-conversation-out for recall's ranking constants (`bench/locomo.py --folds`).

Each conversation is retained once, in process, the way the plain bench retains it (one call per
turn, in order). Each question's candidates (what `store.search` returns for it) are captured
once for every candidate count tried; the fusion constants are then tried by fusing those
candidates again, in process, which is what makes trying dozens of values cheap.

Selection: each constant is varied on its own, the others at their current values. For each
fold (four conversations to tune on, the fifth held out) a constant takes the value best on the
four by recall_any@10 (ties: the current value, else the smaller); the values picked that way
together are scored on the fifth. A constant whose pieces do not help the held-out conversation
(its "off" value scores as well there) only fits the data in sample.
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

# The values tried for each constant; the first of a pair in OFF is the value that turns its
# piece off. `per_leg` changes the candidates themselves, so it is captured, not re-fused.
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


Hits = dict[str, dict[int, int]]
"""Per conversation, per k: how many of its questions were hit at k."""


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


def score(questions: Sequence[Captured], settings: dict[str, Any]) -> Hits:
    """Hits at each k, per conversation, when ranking with `settings`."""
    hits: Hits = {}
    for q, turns in zip(questions, rankings(questions, settings), strict=True):
        row = hits.setdefault(q.conversation, dict.fromkeys(KS, 0))
        for k in KS:
            row[k] += bool(q.evidence & set(turns[:k]))
    return hits


def rate(hits: Hits, sizes: dict[str, int], conversations: Iterable[str], k: int) -> float:
    """recall_any@k over the questions of `conversations`, pooled."""
    names = list(conversations)
    return sum(hits[c][k] for c in names) / sum(sizes[c] for c in names)


def pick(values: Sequence[Any], default: Any, training: list[float]) -> Any:
    """The value best in training; ties go to the current value, then to the earlier (smaller)."""
    best = max(training)
    tied = [v for v, t in zip(values, training, strict=True) if t == best]
    return default if default in tied else tied[0]


def shown(value: Any) -> str:
    if isinstance(value, timedelta):
        return f"{value / DAY:g}d"
    return f"{value:g}" if isinstance(value, float) else str(value)


def folds(questions: Sequence[Captured], per_leg: int) -> None:
    """Print in-sample and held-out figures, and what each constant does out of sample."""
    started = time.perf_counter()
    names = list(dict.fromkeys(q.conversation for q in questions))
    sizes = {c: sum(q.conversation == c for q in questions) for c in names}
    base = current(per_leg)
    cache: dict[tuple[str, Any], Hits] = {}

    def hits_with(name: str, value: Any) -> Hits:
        if (name, value) not in cache:
            cache[(name, value)] = score(questions, {**base, name: value})
        return cache[(name, value)]

    in_sample = hits_with("per_leg", per_leg)
    chosen: dict[str, dict[str, Any]] = {}  # held-out conversation -> constants picked without it
    for held in names:
        training = [c for c in names if c != held]
        chosen[held] = {
            name: pick(values, base[name], [rate(hits_with(name, v), sizes, training, 10) for v in values])
            for name, values in GRID.items()
        }
    held_out = {held: score([q for q in questions if q.conversation == held], chosen[held]) for held in names}
    print()
    print("Leave-one-conversation-out (tune on four conversations, score the fifth), recall_any@k")
    print(
        f"{'held out':10}{'n':>5}"
        + "".join(f"{'in @' + str(k):>9}{'out @' + str(k):>10}" for k in KS)
        + f"{'train @10':>11}"
    )
    for held in names:
        training = [c for c in names if c != held]
        tuned = score([q for q in questions if q.conversation != held], chosen[held])
        row = f"{held:10}{sizes[held]:>5}"
        for k in KS:
            row += f"{rate(in_sample, sizes, [held], k):>9.3f}{rate(held_out[held], sizes, [held], k):>10.3f}"
        print(row + f"{rate(tuned, sizes, training, 10):>11.3f}")
    for label, pooled in (("mean", False), ("pooled", True)):
        row = f"{label:10}{sum(sizes.values()) if pooled else '':>5}"
        for k in KS:
            if pooled:
                inside = rate(in_sample, sizes, names, k)
                outside = sum(held_out[c][c][k] for c in names) / sum(sizes.values())
            else:
                inside = statistics.mean(rate(in_sample, sizes, [c], k) for c in names)
                outside = statistics.mean(rate(held_out[c], sizes, [c], k) for c in names)
            row += f"{inside:>9.3f}{outside:>10.3f}"
        print(row)
    print("  in: the current constants (chosen on all five) on this conversation; out: the constants picked on the")
    print("  other four, on this one; train: those picked constants on the four they were picked on")
    print()
    print(
        "Each constant alone (others current), recall_any@10: all five at the tried values; the value each fold picked;"
    )
    print("and, where the constant has an off value, what turning its piece on gains in sample and held out")
    print(
        f"{'constant':18}{'current':>9}  {'values tried -> @10 on all five':44}{'picked per fold':24}{'gain in':>8}{'out':>7}"
    )
    for name, values in GRID.items():
        tried = " ".join(f"{shown(v)}:{rate(hits_with(name, v), sizes, names, 10):.3f}" for v in values)
        picked = ",".join(shown(chosen[held][name]) for held in names)
        gain = ""
        if name in OFF:
            off = hits_with(name, OFF[name])
            inside = rate(hits_with(name, base[name]), sizes, names, 10) - rate(off, sizes, names, 10)
            outside = statistics.mean(
                rate(hits_with(name, chosen[held][name]), sizes, [held], 10) - rate(off, sizes, [held], 10)
                for held in names
            )
            gain = f"{inside:>+8.3f}{outside:>+7.3f}"
        print(f"{name:18}{shown(base[name]):>9}  {tried:58}{picked:22}{gain}")
    print(
        f"({len(cache) + len(names)} rankings of {len(questions)} questions in {time.perf_counter() - started:.0f} s)"
    )


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
