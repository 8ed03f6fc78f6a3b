"""Reflect quality on LoCoMo, measured through a real MCP stdio session.

Every turn of each conversation is retained into a bank of its own, as `bench/locomo.py` does.
Then every question of categories 1-4 goes through `reflect`, first answered extractively (the
baseline, sampling off, no endpoint), then, when BULKHEAD_LLM_URL (or BULKHEAD_LLM_PROVIDER) is
set, by that model endpoint, on the same stored memories. Prints for each:

- token F1 of the answer against the gold answer (LoCoMo's QA metric: lower-cased, punctuation
  and articles removed, bag-of-tokens F1; without its Porter stemming), the `[n]` markers removed;
- citation precision: of the memories an answer cites, the share that are among the question's
  evidence turns; and the share of questions answered with at least one citation;
- reflect latency over MCP stdio, p50 and p95.

    python bench/reflect.py [--data DIR] [--conversations N] [--questions N] [--embedder local|none|openai]

    # against a local llama.cpp server (llama-server -m model.gguf --port 8080) or Ollama:
    BULKHEAD_LLM_URL=http://127.0.0.1:8080/v1 BULKHEAD_LLM_MODEL=local python bench/reflect.py
    BULKHEAD_LLM_URL=http://127.0.0.1:11434/v1 BULKHEAD_LLM_MODEL=llama3.1:8b python bench/reflect.py

Without BULKHEAD_DATABASE_URL, a throwaway embedded PostgreSQL is started in a temporary folder
and removed afterwards. This is a benchmark, not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import string
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from locomo import CATEGORIES, DEFAULT_DATA, Conversation, call, load, percentile
from mcp import Client
from mcp.client.stdio import StdioServerParameters

REPO = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"\[\d+\]")
ARTICLES = re.compile(r"\b(a|an|the|and)\b")


def normalise(text: str) -> list[str]:
    """LoCoMo's answer normalisation (SQuAD's, with 'and' among the articles), as tokens."""
    text = text.replace(",", "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return ARTICLES.sub(" ", text).split()


def token_f1(answer: str, gold: str) -> float:
    """Bag-of-tokens F1 of `answer` against `gold`."""
    predicted, wanted = normalise(CITATION.sub(" ", answer)), normalise(gold)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


@dataclass
class Tally:
    """One mode's figures."""

    f1: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    cited: int = 0
    cited_in_evidence: int = 0
    answered: int = 0
    questions: int = 0
    latency_ms: list[float] = field(default_factory=list)
    modes: Counter[str] = field(default_factory=Counter)
    fallbacks: Counter[str] = field(default_factory=Counter)


def server_env(args: argparse.Namespace, data_dir: str | None, schema: str, with_model: bool) -> dict[str, str]:
    """The stdio server's environment: auth off, this run's schema, the model only when asked for."""
    env = {k: v for k, v in os.environ.items() if with_model or not k.startswith("BULKHEAD_LLM_")}
    env.update(
        BULKHEAD_DEFAULT_SCHEMA=schema,
        BULKHEAD_AUTH_DISABLED="true",
        BULKHEAD_LOG_LEVEL="WARNING",
        BULKHEAD_REFLECT_SAMPLING="off",
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


def params(env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_server", "serve"], env=env, cwd=str(REPO))


async def retain_all(env: dict[str, str], conversations: list[Conversation]) -> dict[str, str]:
    """Retain every turn; the turn id of each memory id."""
    turns: dict[str, str] = {}
    async with Client(params(env), mode="legacy") as client:
        for conversation in conversations:
            for turn in conversation.turns:
                stored = await call(
                    client,
                    "retain",
                    {
                        "content": turn.content,
                        "bank": f"locomo-{conversation.name}",
                        "occurred_at": turn.occurred_at,
                        "document_id": turn.turn_id,
                    },
                )
                turns.update(dict.fromkeys(stored["memory_ids"], turn.turn_id))
            print(f"  retained {conversation.name}: {len(conversation.turns)} turns", file=sys.stderr)
    return turns


async def reflect_all(
    env: dict[str, str], conversations: list[Conversation], turns: dict[str, str], show: int = 0
) -> Tally:
    """Ask every question through reflect and score the answers; print the first `show` to stderr."""
    tally = Tally()
    async with Client(params(env), mode="legacy", read_timeout_seconds=600) as client:
        for conversation in conversations:
            for question in conversation.questions:
                started = time.perf_counter()
                result: dict[str, Any] = await call(
                    client, "reflect", {"query": question.text, "bank": f"locomo-{conversation.name}"}
                )
                tally.latency_ms.append((time.perf_counter() - started) * 1000)
                tally.questions += 1
                tally.modes[result["mode"]] += 1
                if result.get("fallback"):
                    tally.fallbacks[result["fallback"]] += 1
                tally.f1[question.category].append(token_f1(result["answer"], question.answer))
                if tally.questions <= show:
                    print(f"Q: {question.text}\ngold: {question.answer}\nanswer: {result['answer']}\n", file=sys.stderr)
                cited = [turns.get(memory_id) for memory_id in result["citations"]]
                tally.answered += bool(cited)
                tally.cited += len(cited)
                tally.cited_in_evidence += sum(turn in question.evidence for turn in cited)
            print(f"  reflected {conversation.name}: {len(conversation.questions)} questions", file=sys.stderr)
    return tally


async def run(args: argparse.Namespace, conversations: list[Conversation], data_dir: str | None) -> None:
    schema = f"reflect_{uuid.uuid4().hex[:8]}"
    baseline_env = server_env(args, data_dir, schema, with_model=False)
    turns = await retain_all(baseline_env, conversations)
    tallies = {"extractive": await reflect_all(baseline_env, conversations, turns, args.show)}
    if os.environ.get("BULKHEAD_LLM_URL") or os.environ.get("BULKHEAD_LLM_PROVIDER"):
        model = os.environ.get("BULKHEAD_LLM_MODEL", "?")
        model_env = server_env(args, data_dir, schema, with_model=True)
        tallies[f"llm {model}"] = await reflect_all(model_env, conversations, turns, args.show)
    report(args, conversations, tallies)


def report(args: argparse.Namespace, conversations: list[Conversation], tallies: dict[str, Tally]) -> None:
    """Print the figures, and the command and machine that produced them."""
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    turns = sum(len(c.turns) for c in conversations)
    questions = sum(len(c.questions) for c in conversations)
    print(f"LoCoMo reflect, {len(conversations)} conversations, {turns} turns, {questions} questions (cat 1-4)")
    load1, load5, _ = os.getloadavg()
    print(
        f"embedder: {args.embedder or os.environ.get('BULKHEAD_EMBEDDER', 'local')}; {time.strftime('%Y-%m-%d')}; "
        f"{os.cpu_count()} cores; load average {load1:.2f} (1 min), {load5:.2f} (5 min)"
    )
    if len(tallies) > 1:
        print(f"model endpoint: {os.environ.get('BULKHEAD_LLM_URL', 'provider default')} (BULKHEAD_LLM_URL)")
    header = "".join(f"{f'{c} {n}':>14}" for c, n in CATEGORIES.items())
    print(f"{'':22}{'F1':>7}{header}{'cite prec':>11}{'answered':>10}{'p50 ms':>9}{'p95 ms':>9}")
    for name, tally in tallies.items():
        every = [f for per in tally.f1.values() for f in per]
        per_category = "".join(
            f"{statistics.mean(tally.f1[c]) if tally.f1.get(c) else float('nan'):>14.3f}" for c in CATEGORIES
        )
        precision = tally.cited_in_evidence / tally.cited if tally.cited else float("nan")
        print(
            f"{name:22}{statistics.mean(every):>7.3f}{per_category}{precision:>11.3f}"
            f"{tally.answered / tally.questions:>10.3f}{percentile(tally.latency_ms, 50):>9.1f}"
            f"{percentile(tally.latency_ms, 95):>9.1f}"
        )
        modes = ", ".join(f"{mode} {count}" for mode, count in tally.modes.most_common())
        fallbacks = "; ".join(f"{reason} ({count})" for reason, count in tally.fallbacks.most_common(3))
        print(f"{'':22}answered by: {modes}" + (f"; fell back: {fallbacks}" if fallbacks else ""))
    print(f"command: {command}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("BULKHEAD_LOCOMO_DATA", DEFAULT_DATA)),
        help="folder of LoCoMo conversation files (default: $BULKHEAD_LOCOMO_DATA or ../shared/data/locomo-dev)",
    )
    parser.add_argument("--embedder", choices=["local", "openai", "none"], help="override BULKHEAD_EMBEDDER")
    parser.add_argument("--conversations", type=int, help="only the first N conversations")
    parser.add_argument("--questions", type=int, help="only the first N questions of each conversation")
    parser.add_argument("--show", type=int, default=0, help="print the first N questions and answers to stderr")
    args = parser.parse_args()
    conversations = load(args.data)[: args.conversations]
    if not conversations:
        parser.error(f"no conversation files in {args.data}")
    for conversation in conversations:
        conversation.questions = conversation.questions[: args.questions]
    if os.environ.get("BULKHEAD_DATABASE_URL"):
        anyio.run(run, args, conversations, None)
        return
    with tempfile.TemporaryDirectory(prefix="bulkhead-reflect-") as data_dir:
        anyio.run(run, args, conversations, data_dir)


if __name__ == "__main__":
    main()
