"""Recall's side of the store: one `SearchRequest` in, linked `Candidate`s out.

Two ideas live here and nowhere else:
- **neighbours**: two memories of a bank are neighbours when one was retained right after the
  other within `SearchRequest.neighbour_window`; the SQL fetches the rows around each seed, and
  `link_neighbours` decides which of them are neighbours;
- **common-word pruning**: words found in more than `SearchRequest.common_word_rows` memories
  of the schema pick full-text candidates only together with the query's other words (the SQL
  says how); `CommonWords` reads and caches which words those are.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, NamedTuple

import asyncpg

from mcp_server.db.pool import Connection
from mcp_server.store.sql.memories import MEMORY_COLUMNS
from mcp_server.store.sql.search import SearchSQL


class StoredMemory(NamedTuple):
    """A memory as read back from the store (a named tuple: recall makes a few hundred at once)."""

    id: uuid.UUID
    seq: int
    text: str
    context: str | None
    tags: list[str]
    metadata: dict[str, Any]
    occurred_at: datetime | None
    retained_at: datetime
    document_id: str


MEMORY_FIELDS = StoredMemory._fields

# A bank of at most this many memories is searched exactly, every vector compared, instead of
# through the schema's vector index (see `store.sql.search.SEMANTIC_LEG`). Comparing 5,000 takes
# about what the index takes at 100,000 (2.6-3.4 ms), 10,000 four times that (`bench/small_banks.py`).
EXACT_SEARCH_MAX = 5000
# A bank's memories join the vector index once it holds this many (schema/0011): half the size
# from which searches use the index, so that the older ones are all in by then (the retains that
# join bring as many in as they add, `store.sql.memories.moving_into_vector_index`).
VECTOR_INDEX_FROM = EXACT_SEARCH_MAX // 2
# In a larger bank, the memories that pass recall's filters are searched exactly when they are at
# most this many: finding out reads up to one more of them, on every filtered recall.
FILTERED_EXACT_MAX = 500
assert ", ".join(f"m.{name}" for name in MEMORY_FIELDS) == MEMORY_COLUMNS


NO_TERMS: frozenset[int] = frozenset()


class Candidate(NamedTuple):
    """A memory recall may return, with the raw signals fusion ranks it by.

    `lexical` is the full-text rank (None: no query word matched); `cosine` the similarity of its
    vector to the query's (None: no vector). `prev_*` describe the memory retained just before
    it: its similarity to the query and to this memory. `prev_seq`/`next_seq` name its
    neighbours, whether or not they are candidates themselves. `matched` numbers the request's
    `terms` the memory holds (from 0), for weighing words by how rare they are.
    """

    memory: StoredMemory
    lexical: float | None
    cosine: float | None
    prev_seq: int | None
    prev_cosine: float | None
    prev_similarity: float | None
    next_seq: int | None
    matched: frozenset[int] = NO_TERMS


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """Everything one recall asks of the store, bound to the search statement by name.

    `ranked_query` is the `to_tsquery` expression candidates are ranked by (None: the query has
    no words, so there is no full-text leg), and `terms` its terms (a candidate's `matched` are
    the numbers of those it holds, from 0); `vector` the query's embedding (None: lexical only).
    `words` are the query's words when candidate picking may prune its common ones (None: never).
    A bank of at most `exact_max` memories is searched by comparing every vector, and so are the
    memories of a larger one that pass the filters, when at most `filtered_max` do.
    """

    bank: str
    ranked_query: str | None
    terms: Sequence[str] = ()
    vector: Any | None = None
    tags: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    per_leg: int = 50
    exact_max: int = EXACT_SEARCH_MAX
    filtered_max: int = FILTERED_EXACT_MAX
    neighbour_window: timedelta = timedelta(hours=1)
    words: str | None = None
    common_word_rows: int = 500

    @property
    def filtered(self) -> bool:
        """Whether a tag or a time window narrows the search."""
        return bool(self.tags) or self.since is not None or self.until is not None


def _aware(value: datetime) -> datetime:
    """A timestamptz as an aware datetime: the driver returns the first and last representable
    instants (stored by PostgreSQL as -infinity and infinity) without their time zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def stored_memory(row: asyncpg.Record) -> StoredMemory:
    """A memory row as a `StoredMemory`; the row's first columns are `MEMORY_FIELDS`, in order."""
    memory = StoredMemory._make(row[: len(MEMORY_FIELDS)])
    occurred, retained = memory.occurred_at, memory.retained_at
    if retained.tzinfo is None or (occurred is not None and occurred.tzinfo is None):
        return memory._replace(occurred_at=None if occurred is None else _aware(occurred), retained_at=_aware(retained))
    return memory


def link_neighbours(rows: Sequence[asyncpg.Record], window: timedelta) -> list[Candidate]:
    """The eligible seeds and their neighbours as candidates, each linked to its neighbours.

    The rows are ordered by seq and hold every seed's true predecessor (see the SQL), so a row's
    predecessor is the row before it; it is a neighbour when retained within `window`.
    """
    linked = {
        row["seq"]: before for before, row in pairwise(rows) if row["retained_at"] - before["retained_at"] <= window
    }
    pool: set[int] = set()
    for index, row in enumerate(rows):
        if row["seed"]:
            pool.add(row["seq"])
            if row["seq"] in linked:
                pool.add(rows[index - 1]["seq"])
            if index + 1 < len(rows) and rows[index + 1]["seq"] in linked:
                pool.add(rows[index + 1]["seq"])
    prev = {seq: before for seq, before in linked.items() if seq in pool}
    following = {before["seq"]: seq for seq, before in prev.items()}
    candidates = []
    for row in rows:
        seq = row["seq"]
        if seq not in pool or not row["eligible"]:
            continue
        before = prev.get(seq)
        # Most candidates hold none of the query's words (the vector leg found them).
        numbers = row["matched"]
        candidates.append(
            Candidate(
                memory=stored_memory(row),
                lexical=row["lexical"],
                cosine=row["cosine"],
                prev_seq=before["seq"] if before is not None else None,
                prev_cosine=before["cosine"] if before is not None else None,
                prev_similarity=row["prev_similarity"] if before is not None else None,
                next_seq=following.get(seq),
                matched=frozenset([number - 1 for number in numbers]) if numbers else NO_TERMS,
            )
        )
    return candidates


# Seconds a schema's common words are kept: they drift slowly, with the statistics behind them.
COMMON_WORDS_TTL = 300.0


class CommonWords:
    """The schema's common words by threshold, read from the planner's statistics at most every few minutes."""

    def __init__(self, schema: str, sql: SearchSQL) -> None:
        self.schema = schema
        self.sql = sql
        self._cached: dict[int, tuple[float, list[str]]] = {}

    async def read(self, conn: Connection, rows: int) -> list[str]:
        """Lexemes in more than `rows` memories of the schema, sorted (the same list until it is read again)."""
        now = time.monotonic()
        cached = self._cached.get(rows)
        if cached is not None and cached[0] > now:
            return cached[1]
        # Kept sorted: a large schema has hundreds of them, and every search binds them all.
        found = sorted({r["elem"] for r in await conn.fetch(self.sql.common_words, self.schema, rows)})
        self._cached[rows] = (now + COMMON_WORDS_TTL, found)
        return found


async def search(
    conn: Connection,
    sql: SearchSQL,
    common: CommonWords,
    request: SearchRequest,
    *,
    hybrid: bool,
    vector: Awaitable[Any] | None = None,
) -> list[Candidate]:
    """Run one search inside the caller's tenant transaction; `vector`, if given, is awaited last."""
    common_words = await common.read(conn, request.common_word_rows) if request.words else []
    values = bound_values(request, common_words, request.vector if vector is None else await vector)
    statement = sql.hybrid if hybrid else sql.lexical
    rows = await conn.fetch(statement.text, *statement.arguments(values))
    return link_neighbours(rows, request.neighbour_window)


def bound_values(request: SearchRequest, common_words: Sequence[str], vector: Any | None) -> dict[str, Any]:
    """The search statement's named values for `request`; `common_words` sorted."""
    return {
        "bank": request.bank,
        "ranked_query": request.ranked_query,
        "terms": list(request.terms),
        "words": request.words,
        "common_words": common_words,
        "vector": vector,
        "tags": list(request.tags) or None,
        "since": request.since,
        "until": request.until,
        "per_leg": request.per_leg,
        "exact_max": request.exact_max,
        "filtered_max": request.filtered_max,
    }
