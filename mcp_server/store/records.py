"""What the store takes and gives back for banks and documents, besides memories (`store.search`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgvector import Vector

from mcp_server.errors import NotFound


@dataclass(frozen=True, slots=True)
class BankSummary:
    """One bank and what it holds."""

    name: str
    memories: int
    documents: int
    last_retained_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewDocument:
    """A document to retain: its chunks and the fields every chunk's memory shares."""

    document_id: str
    chunks: Sequence[str]
    context: str | None
    tags: Sequence[str]
    metadata: dict[str, Any]
    occurred_at: datetime | None


@dataclass(frozen=True, slots=True)
class RetainedDocument:
    """A document in a bank: its id and its memories' ids, in order; `already_stored` when a
    retain found it there and wrote nothing."""

    document_id: str
    memory_ids: list[uuid.UUID]
    already_stored: bool = False


def as_vectors(vectors: Sequence[Any]) -> list[Vector]:
    """Wrap vectors for a `vector[]` parameter (a bare array would read as a 2-D array)."""
    return [v if isinstance(v, Vector) else Vector(v) for v in vectors]


class UnknownBank(NotFound):
    """The bank does not exist in this tenant's schema."""

    def __init__(self, bank: str) -> None:
        super().__init__(f"bank {bank!r} does not exist.")
        self.bank = bank
