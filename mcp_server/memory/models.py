"""The results of memory operations: what the tools return as structured content."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class RetainResult(BaseModel):
    """What `retain` stored."""

    bank: str
    document_id: str
    memory_ids: list[str] = Field(description="Ids of the memories the content was stored as, in order.")


class RecalledMemory(BaseModel):
    """One memory found by `recall`."""

    id: str
    text: str
    score: float = Field(description="Relevance; higher is better. Comparable within one result only.")
    occurred_at: str | None = Field(description="When it happened (ISO 8601), if the caller said.")
    retained_at: str = Field(description="When it was stored (ISO 8601).")
    tags: list[str]
    document_id: str
    context: str | None
    metadata: dict[str, Any]


class RecallResult(BaseModel):
    """The memories that best match a query, best first."""

    bank: str
    memories: list[RecalledMemory]
    truncated: bool = Field(description="True when more matches existed than max_results or max_tokens allowed.")


class ReflectResult(BaseModel):
    """An answer synthesised from memories, with the ids of those it used."""

    answer: str = Field(description="The answer; `[n]` cites the n-th id of `citations`.")
    citations: list[str] = Field(description="Ids of the memories the answer cites, in citation order.")
    mode: Literal["llm", "sampling", "extractive"] = Field(
        description="Who answered: the configured model, the client's model, or extraction from the memories."
    )
    fallback: str | None = Field(
        default=None, description="Why no model answered, when one was expected to (the answer is then extractive)."
    )


class ForgetResult(BaseModel):
    """How many memories were deleted."""

    deleted: int


class BankInfo(BaseModel):
    """One bank and what it holds."""

    bank: str
    memories: int
    documents: int
    last_retained_at: str | None


class ListBanksResult(BaseModel):
    """Every bank of the caller's tenant."""

    banks: list[BankInfo]
