"""Recall quality on LoCoMo, measured through a real MCP stdio session.

Every turn of each conversation is retained into a bank of its own (speaker, text and photo
caption as content; the session's date as occurred_at; the turn id in metadata), in order, one
`retain` call per turn. Then every question of categories 1-4 is recalled with max_results=50,
and a question counts as hit at k when any of its evidence turns is among the first k memories
(recall_any@k). Prints the figures overall and per category, with retain and recall latency.

    python bench/locomo.py [--data DIR] [--embedder local|none|openai] [--folds]

`--folds` measures in process instead: it retains each conversation once, captures every
question's candidates, and prints leave-one-conversation-out figures for the ranking constants
next to the in-sample ones (see bench/folds.py).

The data folder defaults to $BULKHEAD_LOCOMO_DATA, else ../shared/data/locomo-dev beside the
repository. Without BULKHEAD_DATABASE_URL, a throwaway embedded PostgreSQL is started in a
temporary folder and removed afterwards. This is a benchmark, not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "locomo-dev"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (5, 10, 50)


@dataclass
class Turn:
    """One turn, as it is retained."""

    turn_id: str
    content: str
    occurred_at: str


@dataclass
class Question:
    """One question of categories 1-4 and the turns that answer it."""

    text: str
    category: int
    evidence: set[str]
    answer: str = ""
    """The gold answer (for bench/reflect.py)."""


@dataclass
class Conversation:
    """One conversation of the split."""

    name: str
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def session_time(text: str) -> str:
    """'1:56 pm on 8 May, 2023' as ISO 8601."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").isoformat()


def load(folder: Path) -> list[Conversation]:
    """Every conversation file (`*.json`) in `folder`, in name order."""
    conversations = []
    for path in sorted(folder.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        conversation = Conversation(path.stem)
        number = 1
        while f"session_{number}" in raw:
            when = session_time(raw[f"session_{number}_date_time"])
            for turn in raw[f"session_{number}"]:
                content = f"{turn['speaker']}: {turn['text']}"
                if turn.get("blip_caption"):
                    content += f" [shared a photo: {turn['blip_caption']}]"
                conversation.turns.append(Turn(turn["dia_id"], content, when))
            number += 1
        for qa in raw["qa"]:
            if qa.get("category") in CATEGORIES:
                evidence = {part.strip() for item in qa["evidence"] for part in item.split(";") if part.strip()}
                conversation.questions.append(Question(qa["question"], qa["category"], evidence, str(qa["answer"])))
        conversations.append(conversation)
    return conversations


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def server_env(args: argparse.Namespace, data_dir: str | None) -> dict[str, str]:
    """The stdio server's environment: this one, with auth off and a schema of this run's own."""
    env = dict(os.environ)
    env.update(
        BULKHEAD_DEFAULT_SCHEMA=f"locomo_{uuid.uuid4().hex[:8]}",
        BULKHEAD_AUTH_DISABLED="true",
        BULKHEAD_LOG_LEVEL="WARNING",
    )
    # The bench measures the server, not its quotas: retains here come faster than a tenant's default rate.
    env.update({f"BULKHEAD_TENANT_{name}": "0" for name in ("MAX_MEMORIES", "MAX_BYTES", "CALLS_PER_SECOND")})
    env.pop("BULKHEAD_TENANT_KEY_MAP", None)
    env.pop("BULKHEAD_TENANT_KEY_FILE", None)
    if args.embedder:
        env["BULKHEAD_EMBEDDER"] = args.embedder
    if data_dir is not None:
        env["BULKHEAD_DATA_DIR"] = data_dir
    return env


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool that must succeed."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content[0].text if result.content else result}")
    assert result.structured_content is not None
    return result.structured_content


async def run(args: argparse.Namespace, conversations: list[Conversation], data_dir: str | None) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server", "serve"], env=server_env(args, data_dir), cwd=str(REPO)
    )
    retain_ms: list[float] = []
    recall_ms: list[float] = []
    hits: dict[int, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    async with Client(params, mode="legacy") as client:
        for conversation in conversations:
            bank = f"locomo-{conversation.name}"
            for turn in conversation.turns:
                started = time.perf_counter()
                await call(
                    client,
                    "retain",
                    {
                        "content": turn.content,
                        "bank": bank,
                        "occurred_at": turn.occurred_at,
                        "document_id": turn.turn_id,
                        "metadata": {"turn": turn.turn_id},
                    },
                )
                retain_ms.append((time.perf_counter() - started) * 1000)
            for question in conversation.questions:
                started = time.perf_counter()
                found = await call(
                    client, "recall", {"query": question.text, "bank": bank, "max_results": 50, "max_tokens": 100_000}
                )
                recall_ms.append((time.perf_counter() - started) * 1000)
                turns = [memory["metadata"].get("turn") for memory in found["memories"]]
                for k in KS:
                    hits[question.category][k].append(bool(question.evidence & set(turns[:k])))
            print(
                f"  {conversation.name}: {len(conversation.turns)} turns, {len(conversation.questions)} questions",
                file=sys.stderr,
            )
    report(args, conversations, hits, retain_ms, recall_ms)


def report(
    args: argparse.Namespace,
    conversations: list[Conversation],
    hits: dict[int, dict[int, list[bool]]],
    retain_ms: list[float],
    recall_ms: list[float],
) -> None:
    """Print the figures, and the command and machine that produced them."""
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    turns = sum(len(c.turns) for c in conversations)
    questions = sum(len(c.questions) for c in conversations)
    print(f"LoCoMo recall_any@k, {len(conversations)} conversations, {turns} turns, {questions} questions (cat 1-4)")
    print(
        f"embedder: {args.embedder or os.environ.get('BULKHEAD_EMBEDDER', 'local')}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores; "
        f"load average {args.load_before:.1f} before, {os.getloadavg()[0]:.1f} now"
    )
    print(f"{'':14}{'n':>5}" + "".join(f"{'@' + str(k):>8}" for k in KS))
    overall = {k: [h for cat in hits.values() for h in cat[k]] for k in KS}
    print(f"{'overall':14}{len(overall[5]):>5}" + "".join(f"{statistics.mean(overall[k]):>8.3f}" for k in KS))
    for category, name in CATEGORIES.items():
        if category in hits:
            row = hits[category]
            print(
                f"{f'{category} {name}':14}{len(row[5]):>5}" + "".join(f"{statistics.mean(row[k]):>8.3f}" for k in KS)
            )
    for what, values in (("retain", retain_ms), ("recall", recall_ms)):
        if not values:
            continue
        print(
            f"{what} latency over MCP stdio: p50 {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} ms "
            f"({len(values)} calls)"
        )
    print(f"command: {command}")


def run_folds(args: argparse.Namespace, conversations: list[Conversation], data_dir: str | None) -> None:
    """Capture every question's candidates once, then score the ranking constants fold by fold."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import folds

    from mcp_server.memory.ranking import CANDIDATES_PER_LEG

    per_legs = sorted({CANDIDATES_PER_LEG, *folds.GRID["per_leg"]})
    questions = anyio.run(folds.capture, conversations, per_legs, data_dir, args.embedder)
    hits: dict[int, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for question, ranked in zip(questions, folds.rankings(questions, folds.current(CANDIDATES_PER_LEG)), strict=True):
        for k in KS:
            hits[question.category][k].append(bool(question.evidence & set(ranked[:k])))
    report(args, conversations, hits, [], [])
    folds.folds(questions, CANDIDATES_PER_LEG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("BULKHEAD_LOCOMO_DATA", DEFAULT_DATA)),
        help="folder of LoCoMo conversation files (default: $BULKHEAD_LOCOMO_DATA or ../shared/data/locomo-dev)",
    )
    parser.add_argument("--embedder", choices=["local", "openai", "none"], help="override BULKHEAD_EMBEDDER")
    parser.add_argument("--limit", type=int, help="only the first N conversations")
    parser.add_argument(
        "--folds", action="store_true", help="leave-one-conversation-out figures for the ranking constants"
    )
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]
    conversations = load(args.data)[: args.limit]
    if not conversations:
        parser.error(f"no conversation files in {args.data}")
    if args.folds:
        with tempfile.TemporaryDirectory(prefix="bulkhead-locomo-") as data_dir:
            run_folds(args, conversations, None if os.environ.get("BULKHEAD_DATABASE_URL") else data_dir)
        return
    if os.environ.get("BULKHEAD_DATABASE_URL"):
        anyio.run(run, args, conversations, None)
        return
    with tempfile.TemporaryDirectory(prefix="bulkhead-locomo-") as data_dir:
        anyio.run(run, args, conversations, data_dir)


if __name__ == "__main__":
    main()
