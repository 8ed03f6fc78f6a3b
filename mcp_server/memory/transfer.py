"""Export and import: a tenant's banks as JSON Lines, and back.

The first line is a `header` (`format`, `version`, the embedder and dimension of any vectors),
then each bank: one `bank` line with its counts, its `document` lines, and its `memory` lines
in retained order. Everything that ranks a memory travels with it (ids, text, context, tags,
metadata, `occurred_at`, `retained_at`, and the order), so an import into a fresh schema
recalls as the original did. Vectors travel only when asked for; on import, a memory without
one, with one of another dimension than the schema's, or with one another embedder made (the
header names it) is embedded again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcp_server.embedding import Embedder
from mcp_server.errors import InvalidInput, NotFound
from mcp_server.memory import validation as check
from mcp_server.store import TenantStore, stored_dimension
from mcp_server.store.tenants import BankWriter, ExportedBank, analyze, open_bank, read_schema

FORMAT = "bulkhead-export"
VERSION = 1
# Memories embedded and written per statement on import.
IMPORT_BATCH = 256

Progress = Callable[[int, int], None]


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Header(Line):
    type: Literal["header"]
    format: Literal["bulkhead-export"]
    version: Literal[1]
    schema_name: str = Field(alias="schema")
    exported_at: datetime
    embedder: str | None
    dimension: int | None
    vectors: bool


class BankLine(Line):
    type: Literal["bank"]
    name: str
    created_at: datetime
    documents: int = Field(ge=0)
    memories: int = Field(ge=0)


class DocumentLine(Line):
    type: Literal["document"]
    id: str
    retained_at: datetime


class MemoryLine(Line):
    type: Literal["memory"]
    id: uuid.UUID
    document_id: str
    chunk_index: int = Field(ge=0)
    text: str
    context: str | None
    tags: list[str]
    metadata: dict[str, Any]
    occurred_at: datetime | None
    retained_at: datetime
    embedding: list[float] | None = None


Record = BankLine | DocumentLine | MemoryLine
RECORDS: dict[str, type[Record]] = {"bank": BankLine, "document": DocumentLine, "memory": MemoryLine}


def _aware(value: datetime | None) -> datetime | None:
    # The driver reads PostgreSQL's infinities back as naive datetime.max/min.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _write(out: TextIO, record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str))
    out.write("\n")


async def export_schema(
    store: TenantStore,
    out: TextIO,
    *,
    bank: str | None = None,
    vectors: bool = False,
    embedder: Embedder | None = None,
) -> int:
    """Write the schema's banks (or one) to `out` from one snapshot; returns how many memories."""
    if bank is not None:
        bank = check.bank(bank)
    dimension = await stored_dimension(store) if vectors else None
    written = 0
    async with AsyncExitStack() as stack:
        reader = await read_schema(store, stack)
        banks = await reader.banks(bank)
        if bank is not None and not banks:
            raise NotFound(f"bank {bank!r} does not exist in schema {store.schema}")
        header = {
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "schema": store.schema,
            "exported_at": datetime.now(UTC).isoformat(),
            "embedder": embedder.name if embedder is not None and vectors else None,
            "dimension": dimension,
            "vectors": vectors and store.has_vectors,
        }
        _write(out, header)
        for found in banks:
            _write(out, _bank_line(found))
            async for row in reader.documents(found):
                _write(out, {"type": "document", "id": row["id"], "retained_at": row["retained_at"].isoformat()})
            async for row in reader.memories(found, vectors=vectors):
                _write(out, _memory_line(row))
                written += 1
    return written


def _bank_line(bank: ExportedBank) -> dict[str, Any]:
    return {
        "type": "bank",
        "name": bank.name,
        "created_at": bank.created_at.isoformat(),
        "documents": bank.documents,
        "memories": bank.memories,
    }


def _memory_line(row: Any) -> dict[str, Any]:
    occurred = _aware(row["occurred_at"])
    line = {
        "type": "memory",
        "id": str(row["id"]),
        "document_id": row["document_id"],
        "chunk_index": row["chunk_index"],
        "text": row["text"],
        "context": row["context"],
        "tags": list(row["tags"]),
        "metadata": row["metadata"],
        "occurred_at": occurred.isoformat() if occurred is not None else None,
        "retained_at": _aware(row["retained_at"]).isoformat(),  # type: ignore[union-attr]
    }
    if "embedding" in row:
        embedding = row["embedding"]
        line["embedding"] = [float(x) for x in embedding] if embedding is not None else None
    return line


def _records(lines: Iterable[str]) -> Iterator[tuple[int, Header | Record]]:
    """Each non-empty line parsed and checked, with its line number; the first must be the header."""
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            raise InvalidInput(f"line {number} is not JSON; is this a Bulkhead export?") from None
        if not isinstance(raw, dict):
            raise InvalidInput(f"line {number} is not a JSON object; is this a Bulkhead export?")
        try:
            if number == 1 or "format" in raw:
                if raw.get("format") != FORMAT:
                    raise InvalidInput("the first line is not a Bulkhead export header; is this a Bulkhead export?")
                if raw.get("version") != VERSION:
                    raise InvalidInput(
                        f"this export has format version {raw.get('version')!r}; this Bulkhead reads version {VERSION}"
                    )
                yield number, Header.model_validate(raw)
                continue
            kind = RECORDS.get(str(raw.get("type")))
            if kind is None:
                raise InvalidInput(f"line {number} has no known type (bank, document or memory)")
            yield number, kind.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "line"
            raise InvalidInput(f"line {number}: {where}: {first['msg']}") from None


class Importer:
    """Imports the banks of one export into one schema, each bank in its own transaction."""

    def __init__(
        self,
        store: TenantStore,
        *,
        embedder: Embedder | None,
        bank: str | None = None,
        replace: bool = False,
        progress: Callable[[str], Progress] | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.bank = check.bank(bank) if bank is not None else None
        self.replace = replace
        self.progress = progress
        self.dimension: int | None = None
        self.foreign_vectors = False
        self.embedded = 0

    async def run(self, lines: Iterable[str]) -> list[tuple[str, int]]:
        """Import every bank of `lines` (or the one chosen); returns (bank, memories) for each."""
        self.dimension = await stored_dimension(self.store)
        records = _records(lines)
        first = next(records, None)
        if first is None or not isinstance(first[1], Header):
            raise InvalidInput("the input is empty or does not start with a Bulkhead export header")
        # Vectors of another model (or another build of it) would not compare with the schema's.
        self.foreign_vectors = self.embedder is not None and first[1].embedder != self.embedder.name
        imported: list[tuple[str, int]] = []
        pending = next(records, None)
        while pending is not None:
            number, record = pending
            if not isinstance(record, BankLine):
                raise InvalidInput(
                    f"line {number}: a line of type {getattr(record, 'type', 'header')} comes before any bank line"
                )
            if not check.BANK_NAME.fullmatch(record.name):
                raise InvalidInput(f"line {number}: {record.name!r} is not a valid bank name")
            if self.bank is not None and record.name != self.bank:
                pending = _skip_bank(records)
                continue
            async with AsyncExitStack() as stack:
                writer = await open_bank(self.store, stack, record.name, record.created_at, replace=self.replace)
                pending, count = await self._copy_bank(writer, record, records)
            imported.append((record.name, count))
        if self.bank is not None and not imported:
            raise NotFound(f"bank {self.bank!r} is not in this export; nothing was imported")
        if imported:
            await analyze(self.store)
        return imported

    async def _copy_bank(
        self, writer: BankWriter, bank: BankLine, records: Iterator[tuple[int, Header | Record]]
    ) -> tuple[tuple[int, Header | Record] | None, int]:
        """Write the bank's documents and memories; return the next bank's line and the count."""
        report = self.progress(bank.name) if self.progress is not None else None
        documents: list[dict[str, Any]] = []
        memories: list[MemoryLine] = []
        count = 0
        if report:
            report(0, bank.memories)
        for number, record in records:
            if isinstance(record, BankLine):
                pending: tuple[int, Header | Record] | None = (number, record)
                break
            if isinstance(record, Header):
                raise InvalidInput(f"line {number}: a second header inside the export")
            if isinstance(record, DocumentLine):
                if memories:
                    raise InvalidInput(f"line {number}: a document line after the bank's memory lines")
                documents.append({"id": record.id, "retained_at": record.retained_at.isoformat()})
                if len(documents) >= IMPORT_BATCH:
                    await writer.add_documents(documents)
                    documents = []
                continue
            await writer.add_documents(documents)
            documents = []
            memories.append(record)
            if len(memories) >= IMPORT_BATCH:
                count += await self._write_memories(writer, memories)
                memories = []
                if report:
                    report(min(count, bank.memories), bank.memories)
        else:
            pending = None
        await writer.add_documents(documents)
        count += await self._write_memories(writer, memories)
        if count != bank.memories:
            raise InvalidInput(
                f"bank {bank.name!r}: the export declares {bank.memories} memories but holds {count} "
                "(is it cut short?); nothing was imported into that bank"
            )
        if report:
            report(count, bank.memories)
        return pending, count

    async def _write_memories(self, writer: BankWriter, memories: list[MemoryLine]) -> int:
        if not memories:
            return 0
        vectors: list[list[float] | None] = [m.embedding for m in memories]
        if self.dimension is not None:
            stale = [i for i, v in enumerate(vectors) if v is None or len(v) != self.dimension or self.foreign_vectors]
            if stale and self.embedder is not None:
                fresh = await self.embedder.embed_documents([memories[i].text for i in stale])
                for i, computed in zip(stale, fresh, strict=True):
                    vectors[i] = [float(x) for x in computed]
                self.embedded += len(stale)
            else:
                for i in stale:
                    vectors[i] = None
        rows = []
        for memory, vector in zip(memories, vectors, strict=True):
            row = memory.model_dump(mode="json", exclude={"type", "embedding"})
            row["embedding"] = vector
            rows.append(row)
        await writer.add_memories(rows)
        return len(memories)


def _skip_bank(records: Iterator[tuple[int, Header | Record]]) -> tuple[int, Header | Record] | None:
    """Pass over a bank that was not chosen; return the next bank's line."""
    for number, record in records:
        if isinstance(record, BankLine):
            return number, record
    return None
