"""The results of memory operations: what the tools return as structured content."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr


class RetainResult(BaseModel):
    """What `retain` stored."""

    bank: str
    document_id: str
    memory_ids: list[str] = Field(description="Ids of the memories the content was stored as, in order.")
    already_stored: bool = Field(
        default=False,
        description="True when the bank already held this exact memory: nothing new was stored, and "
        "document_id and memory_ids are the existing ones.",
    )


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
    # Not published: whether the bank exists shapes only the readable text.
    _bank_exists: bool = PrivateAttr(default=True)

    @classmethod
    def of_missing_bank(cls, bank: str) -> RecallResult:
        """The result for a bank that does not exist: no memories, like an empty bank."""
        result = cls(bank=bank, memories=[], truncated=False)
        result._bank_exists = False
        return result

    @property
    def bank_exists(self) -> bool:
        """False when the bank has never been created (or was forgotten whole)."""
        return self._bank_exists


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
