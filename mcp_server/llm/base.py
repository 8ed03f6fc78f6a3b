"""What a synthesiser is given and what it promises: a prompt in, an answer citing `[n]` out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

Mode = Literal["llm", "sampling", "extractive"]
"""Which kind of synthesiser answered: a configured endpoint, the client's model, or extraction."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One memory as the prompt numbers it (from 1, best first)."""

    number: int
    text: str
    dated: date | None
    """When it happened, else when it was stored."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """A question and its evidence, structured (for extraction) and rendered (for a model)."""

    question: str
    evidence: tuple[Evidence, ...]
    system: str
    """The instructions: fixed, never built from memory text."""
    user: str
    """The question, the current date and the evidence, quoted."""
    max_tokens: int
    """The largest answer wanted, in tokens."""


class Synthesiser(Protocol):
    """Answers a prompt from its evidence, citing evidence numbers in brackets (`[1]`).

    A failure raises `Unavailable` with a short public reason (no key, no prompt text); the
    caller then falls back to extraction.
    """

    @property
    def mode(self) -> Mode: ...

    async def synthesise(self, prompt: Prompt) -> str: ...

    async def aclose(self) -> None: ...
