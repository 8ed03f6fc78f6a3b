"""retain, recall, forget and list_banks over one tenant's store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from mcp_server.embedding import Embedder, Vector
from mcp_server.errors import InvalidInput, NotFound
from mcp_server.memory import validation as check
from mcp_server.memory.budget import count_tokens, cut_to_budget
from mcp_server.memory.chunking import chunk_text
from mcp_server.memory.models import (
    BankInfo,
    ForgetResult,
    ListBanksResult,
    RecalledMemory,
    RecallResult,
    RetainResult,
)
from mcp_server.memory.ranking import (
    CANDIDATES_PER_LEG,
    COMMON_WORD_ROWS,
    NEIGHBOUR_WINDOW,
    Ranked,
    fuse,
    lexical_query,
    lexical_terms,
    pruning_words,
)
from mcp_server.memory.time_hints import time_hints
from mcp_server.store import NewDocument, SearchRequest, StoredMemory, TenantStore, UnknownBank
from mcp_server.tenancy import TenantLimits

T = TypeVar("T")

# Chunks whose embedding may overlap the retain's transaction: about as long as the transaction
# takes to open and search (a short chunk embeds in 1-2 ms).
OVERLAPPED_CHUNKS = 4


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _recalled(memory: StoredMemory, score: float) -> RecalledMemory:
    return RecalledMemory(
        id=str(memory.id),
        text=memory.text,
        score=round(score, 6),
        occurred_at=_iso(memory.occurred_at),
        retained_at=memory.retained_at.isoformat(),
        tags=memory.tags,
        document_id=memory.document_id,
        context=memory.context,
        metadata=memory.metadata,
    )


async def retain(
    store: TenantStore,
    *,
    content: str,
    bank: str,
    max_content_bytes: int,
    context: str | None = None,
    occurred_at: str | None = None,
    tags: Sequence[str] | None = None,
    document_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    embedder: Embedder | None = None,
    limits: TenantLimits | None = None,
) -> RetainResult:
    """Store `content` as one document of memories, replacing that document if it exists.

    A memory identical in every field to one the bank holds (in the document named, or in any
    document when none is named) is not stored again: the result names the existing one. The
    chunks are embedded (in one batch) before the writing transaction opens, so no connection
    waits on the model; if embedding fails, nothing is stored.
    """
    given_id = check.document_id(document_id)
    document = NewDocument(
        document_id=given_id or str(uuid.uuid4()),
        chunks=chunk_text(check.content(content, max_content_bytes)),
        context=check.context(context),
        tags=check.tags(tags),
        metadata=check.metadata(metadata),
        occurred_at=check.timestamp(occurred_at, "occurred_at"),
    )
    bank = check.bank(bank)
    # The chunks are embedded while the transaction opens and the bank is searched for an
    # identical document: a repeat (rare) wastes one embedding, a new one waits for the model
    # once, not after the search. A long document (many model runs) is embedded first instead,
    # so that no transaction stays open, and no new bank's row locked, while the model works.
    vectors: asyncio.Future[list[Vector]] | list[Vector] | None = None
    if embedder is not None and store.has_vectors:
        vectors = _started(embedder.embed_documents(document.chunks))
        if len(document.chunks) > OVERLAPPED_CHUNKS:
            vectors = await vectors
    stored = await store.retain_once(bank, document, vectors, same_id=given_id is not None, limits=limits)
    return RetainResult(
        bank=bank,
        document_id=stored.document_id,
        memory_ids=[str(i) for i in stored.memory_ids],
        already_stored=stored.already_stored,
    )


def bank_not_found(bank: str) -> NotFound:
    """The bank does not exist for this tenant; reads the same whoever else may have one."""
    return NotFound(f"bank {bank!r} does not exist; call list_banks to see your banks (retain creates a bank).")


@dataclass(frozen=True, slots=True)
class RankedRecall:
    """A recall before it is shaped for a caller: the kept memories with their signals."""

    bank: str
    ranked: list[Ranked]
    truncated: bool


def _started(work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """`work` running on its own task, so it overlaps what the caller does next; its failure is
    kept for whoever awaits it (and not reported when nobody does: a retain that found its
    document already stored, or whose transaction failed first, never looks at its vectors).
    """
    future = asyncio.ensure_future(work)
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future


def search_request(
    text: str,
    *,
    bank: str,
    max_results: int = 10,
    tags: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
) -> SearchRequest:
    """What recall asks of the store for the query `text` (already checked), its vector left unset."""
    request = SearchRequest(
        bank=check.bank(bank),
        ranked_query=lexical_query(text),
        terms=lexical_terms(text),
        tags=check.tags(tags),
        since=check.timestamp(since, "since"),
        until=check.timestamp(until, "until"),
        # Enough candidates that every result asked for can come from either leg.
        per_leg=max(CANDIDATES_PER_LEG, check.max_results(max_results)),
        neighbour_window=NEIGHBOUR_WINDOW,
        words=pruning_words(text),
        common_word_rows=COMMON_WORD_ROWS,
    )
    if request.since and request.until and request.since > request.until:
        raise InvalidInput("since is later than until; swap them or widen the window.")
    return request


async def recall_ranked(
    store: TenantStore,
    *,
    query: str,
    bank: str,
    max_results: int = 10,
    max_tokens: int = 2048,
    tags: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    embedder: Embedder | None = None,
) -> RankedRecall:
    """Recall's ranking, with each kept memory's signals: what `recall` returns, and what the
    dashboard's recall debugger shows."""
    text = check.query(query)
    request = search_request(text, bank=bank, max_results=max_results, tags=tags, since=since, until=until)
    check.max_tokens(max_tokens)
    # The query is embedded while the store opens its transaction: the search statement is the
    # first thing that needs the vector.
    vector = (
        _started(embedder.embed_query(text, namespace=store.schema))
        if embedder is not None and store.has_vectors
        else None
    )
    try:
        candidates = await store.search(request, vector=vector)
    except UnknownBank:
        if vector is not None:
            # An embedder that fails says more than a missing bank (and the operator must hear it).
            await vector
        raise
    ranked = fuse(candidates, text, time_hints(text))
    kept, truncated = cut_to_budget(
        ranked, max_results=max_results, max_tokens=max_tokens, size=lambda r: count_tokens(r.candidate.memory.text)
    )
    return RankedRecall(bank=request.bank, ranked=list(kept), truncated=truncated)


async def recall(
    store: TenantStore,
    *,
    query: str,
    bank: str,
    max_results: int = 10,
    max_tokens: int = 2048,
    tags: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    embedder: Embedder | None = None,
) -> RecallResult:
    """The memories that best match `query` by words and by meaning, cut to `max_results` and `max_tokens`."""
    try:
        found = await recall_ranked(
            store,
            query=query,
            bank=bank,
            max_results=max_results,
            max_tokens=max_tokens,
            tags=tags,
            since=since,
            until=until,
            embedder=embedder,
        )
    except UnknownBank:
        # Banks are rows of this tenant's schema: a name used by another tenant, or by nobody,
        # is simply a bank with no memories yet here.
        return RecallResult.of_missing_bank(check.bank(bank))
    return RecallResult(
        bank=found.bank,
        memories=[_recalled(r.candidate.memory, r.score) for r in found.ranked],
        truncated=found.truncated,
    )


async def forget(
    store: TenantStore,
    *,
    bank: str,
    memory_ids: Sequence[str] | None,
    document_id: str | None,
    whole_bank: bool = False,
) -> ForgetResult:
    """Delete memories by id, a whole document, or the whole bank; an unknown bank deletes nothing."""
    bank = check.bank(bank)
    ids = check.memory_ids(memory_ids)
    document = check.document_id(document_id)
    chosen = sum((bool(ids), document is not None, whole_bank))
    if chosen == 0:
        raise InvalidInput("pass memory_ids, document_id or whole_bank=true to say what to forget.")
    if chosen > 1:
        raise InvalidInput("pass only one of memory_ids, document_id and whole_bank.")
    try:
        if whole_bank:
            deleted = await store.forget_bank(bank)
        elif document is not None:
            deleted = await store.forget_document(bank, document)
        else:
            deleted = await store.forget_memories(bank, ids)
    except UnknownBank:
        deleted = 0
    return ForgetResult(deleted=deleted)


async def list_banks(store: TenantStore) -> ListBanksResult:
    """Every bank of the tenant with its counts."""
    return ListBanksResult(
        banks=[
            BankInfo(
                bank=b.name,
                memories=b.memories,
                documents=b.documents,
                last_retained_at=_iso(b.last_retained_at),
            )
            for b in await store.list_banks()
        ]
    )
