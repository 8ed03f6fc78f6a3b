"""Token counting and cutting a ranked list to a token budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from mcp_server.llm.tokens import BYTES_PER_TOKEN, count_tokens

T = TypeVar("T")


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


__all__ = ["BYTES_PER_TOKEN", "count_tokens", "cut_to_budget"]
