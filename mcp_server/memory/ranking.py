"""Turning a free-text query into a full-text search expression."""

from __future__ import annotations

import re

# Words of letters and digits (any script). Everything else, tsquery operators included, is a
# separator, so no caller text reaches `to_tsquery` as syntax.
WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_QUERY_TERMS = 64
# A query of this many words or fewer also matches words that start with them ("deploy" finds
# "deployment"), since a short query gives full-text search little else to go on.
PREFIX_QUERY_WORDS = 3
MIN_PREFIX_CHARS = 3


def lexical_query(text: str) -> str | None:
    """A `to_tsquery` expression matching any word of `text`, or None if it has no words."""
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(text)))[:MAX_QUERY_TERMS]
    if not words:
        return None
    prefix = len(words) <= PREFIX_QUERY_WORDS
    terms = [f"{w}:*" if prefix and len(w) >= MIN_PREFIX_CHARS else w for w in words]
    return " | ".join(terms)
