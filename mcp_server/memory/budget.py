"""Token counting and cutting a ranked list to a token budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

# Tokens are estimated as one per four bytes of UTF-8, rounded up: close to what BPE tokenizers
# give for English prose, and an over-estimate for most other scripts, so a budget is never
# overrun by a model that counts exactly.
BYTES_PER_TOKEN = 4


def count_tokens(text: str) -> int:
    """The estimated token count of `text`."""
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN)


def cut_to_budget(
    ranked: Sequence[T], *, max_results: int, max_tokens: int, size: Callable[[T], int]
) -> tuple[list[T], bool]:
    """Keep items in rank order while they fit; skip any that would overrun the budget.

    Returns the kept items and whether anything was left out for the budget or the count.
    """
    kept: list[T] = []
    used = 0
    truncated = False
    for item in ranked:
        if len(kept) == max_results:
            truncated = True
            break
        cost = size(item)
        if used + cost > max_tokens:
            truncated = True
            continue
        kept.append(item)
        used += cost
    return kept, truncated
