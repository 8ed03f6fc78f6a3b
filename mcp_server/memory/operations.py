"""retain, recall, forget and list_banks over one tenant's store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from mcp_server.embedding import Embedder
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
    fuse,
    lexical_query,
    pruning_words,
)
from mcp_server.memory.time_hints import time_hints
from mcp_server.store import NewDocument, SearchRequest, StoredMemory, TenantStore, UnknownBank
from mcp_server.tenancy import TenantLimits


def bank_not_found(bank: str) -> NotFound:
    """The bank does not exist for this tenant; reads the same whoever else may have one."""
    return NotFound(f"bank {bank!r} does not exist; call list_banks to see your banks (retain creates a bank).")


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

    The chunks are embedded (in one batch) before the transaction opens, so no connection waits
    on the model; if embedding fails, nothing is stored.
    """
    document = NewDocument(
        document_id=check.document_id(document_id) or str(uuid.uuid4()),
        chunks=chunk_text(check.content(content, max_content_bytes)),
        context=check.context(context),
        tags=check.tags(tags),
        metadata=check.metadata(metadata),
        occurred_at=check.timestamp(occurred_at, "occurred_at"),
    )
    bank = check.bank(bank)
    vectors = None
    if embedder is not None and store.has_vectors:
        vectors = await embedder.embed_documents(document.chunks)
    ids = await store.retain(bank, document, vectors, limits=limits)
    return RetainResult(bank=bank, document_id=document.document_id, memory_ids=[str(i) for i in ids])


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
    text = check.query(query)
    request = SearchRequest(
        bank=check.bank(bank),
        ranked_query=lexical_query(text),
        tags=check.tags(tags),
        since=check.timestamp(since, "since"),
        until=check.timestamp(until, "until"),
        # Enough candidates that every result asked for can come from either leg.
        per_leg=max(CANDIDATES_PER_LEG, check.max_results(max_results)),
        neighbour_window=NEIGHBOUR_WINDOW,
        words=pruning_words(text),
        common_word_rows=COMMON_WORD_ROWS,
    )
    check.max_tokens(max_tokens)
    if request.since and request.until and request.since > request.until:
        raise InvalidInput("since is later than until; swap them or widen the window.")
    if embedder is not None and store.has_vectors:
        request = replace(request, vector=await embedder.embed_query(text, namespace=store.schema))
    try:
        candidates = await store.search(request)
    except UnknownBank:
        raise bank_not_found(request.bank) from None
    ranked = fuse(candidates, text, time_hints(text))
    kept, truncated = cut_to_budget(
        ranked, max_results=max_results, max_tokens=max_tokens, size=lambda r: count_tokens(r.candidate.memory.text)
    )
    return RecallResult(
        bank=request.bank, memories=[_recalled(r.candidate.memory, r.score) for r in kept], truncated=truncated
    )


async def forget(
    store: TenantStore,
    *,
    bank: str,
    memory_ids: Sequence[str] | None,
    document_id: str | None,
) -> ForgetResult:
    """Delete memories by id, or a whole document, from one bank."""
    bank = check.bank(bank)
    ids = check.memory_ids(memory_ids)
    document = check.document_id(document_id)
    if not ids and document is None:
        raise InvalidInput("pass memory_ids or document_id to say what to forget.")
    if ids and document is not None:
        raise InvalidInput("pass either memory_ids or document_id, not both.")
    try:
        if document is not None:
            deleted = await store.forget_document(bank, document)
        else:
            deleted = await store.forget_memories(bank, ids)
    except UnknownBank:
        raise bank_not_found(bank) from None
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
