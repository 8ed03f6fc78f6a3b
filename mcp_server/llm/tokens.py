"""How many tokens a text costs a model, estimated without a tokenizer."""

from __future__ import annotations

# Tokens are estimated as one per four bytes of UTF-8, rounded up: close to what BPE tokenizers
# give for English prose, and an over-estimate for most other scripts, so a budget is never
# overrun by a model that counts exactly.
BYTES_PER_TOKEN = 4
ELLIPSIS = " …"


def count_tokens(text: str) -> int:
    """The estimated token count of `text`."""
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN)


def cut_to_tokens(text: str, max_tokens: int) -> str:
    """`text` itself if it fits `max_tokens`, else its longest prefix that does, ending on a word."""
    raw = text.encode("utf-8")
    if len(raw) <= max_tokens * BYTES_PER_TOKEN:
        return text
    # Room for the ellipsis that says the answer was cut.
    cut = raw[: max(0, max_tokens * BYTES_PER_TOKEN - len(ELLIPSIS.encode()))].decode("utf-8", errors="ignore")
    head, space, _ = cut.rpartition(" ")
    return (head if space and head else cut).rstrip() + ELLIPSIS
