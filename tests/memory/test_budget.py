"""Budget cutting: what fits in max_results and max_tokens, in rank order (no database)."""

from __future__ import annotations

from mcp_server.memory.budget import count_tokens, cut_to_budget


def test_budget_keeps_rank_order_and_skips_what_does_not_fit() -> None:
    texts = ["a" * 40, "b" * 400, "c" * 40, "d" * 40, "e" * 40]  # 10, 100, 10, 10, 10 tokens
    kept, truncated = cut_to_budget(texts, max_results=10, max_tokens=35, size=count_tokens)
    assert kept == [texts[0], texts[2], texts[3]] and truncated
    kept, truncated = cut_to_budget(texts, max_results=2, max_tokens=1000, size=count_tokens)
    assert kept == texts[:2] and truncated
    kept, truncated = cut_to_budget(texts, max_results=5, max_tokens=1000, size=count_tokens)
    assert kept == texts and not truncated
    assert count_tokens("é" * 3) == 2  # six bytes of UTF-8
