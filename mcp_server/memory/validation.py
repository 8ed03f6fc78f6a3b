"""Checks on every argument a caller sends, each failing with one sentence a model can act on."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

BANK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_QUERY_CHARS = 4_000
MAX_CONTEXT_CHARS = 4_000
MAX_DOCUMENT_ID_CHARS = 256
MAX_TAGS = 64
MAX_TAG_CHARS = 128
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8
MAX_MEMORY_IDS = 1_000
MAX_RESULTS = 100
MAX_TOKENS = 100_000


class MemoryInputError(ValueError):
    """An argument was refused; `str(error)` is the sentence to show the caller."""


def _clean_text(value: str, what: str) -> str:
    if "\x00" in value:
        raise MemoryInputError(f"{what} contains a NUL character; remove it and try again.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MemoryInputError(
            f"{what} contains an unpaired surrogate, which is not valid Unicode; send valid UTF-8 text."
        ) from None
    return value


def content(value: str, max_bytes: int) -> str:
    """Text to retain: not blank, clean, and within the byte limit."""
    _clean_text(value, "content")
    if not value.strip():
        raise MemoryInputError("content is empty; pass the text you want to remember.")
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise MemoryInputError(
            f"content is {size} bytes, over the limit of {max_bytes} bytes; split it into smaller "
            "documents and retain each one."
        )
    return value


def query(value: str) -> str:
    """A recall or reflect query: not blank, clean, and not absurdly long."""
    _clean_text(value, "query")
    if not value.strip():
        raise MemoryInputError("query is empty; describe what you want to find.")
    if len(value) > MAX_QUERY_CHARS:
        raise MemoryInputError(f"query is longer than {MAX_QUERY_CHARS} characters; shorten it.")
    return value.strip()


def bank(value: str) -> str:
    """A bank name: 1-64 of letters, digits, '.', '_' and '-', starting with a letter or digit."""
    if not isinstance(value, str) or not BANK_NAME.fullmatch(value):
        raise MemoryInputError(
            "bank must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (for example 'default' or 'project-notes')."
        )
    return value


def optional_text(value: str | None, what: str, limit: int = MAX_CONTEXT_CHARS) -> str | None:
    """Optional free text such as `context`: clean and within `limit` characters."""
    if value is None:
        return None
    _clean_text(value, what)
    if len(value) > limit:
        raise MemoryInputError(f"{what} is longer than {limit} characters; shorten it.")
    return value


def document_id(value: str | None) -> str | None:
    """A caller-chosen document id: 1-256 characters, no control characters."""
    if value is None:
        return None
    _clean_text(value, "document_id")
    if not value.strip() or len(value) > MAX_DOCUMENT_ID_CHARS or any(ord(c) < 32 for c in value):
        raise MemoryInputError(
            f"document_id must be 1-{MAX_DOCUMENT_ID_CHARS} printable characters, such as 'notes-2024-05'."
        )
    return value


def timestamp(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 date or date-time; one without an offset is taken as UTC."""
    if value is None:
        return None
    _clean_text(value, what)
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MemoryInputError(
            f"{what} is not an ISO 8601 date or date-time; use a form like '2024-05-08' or '2024-05-08T13:45:00Z'."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # Stored in UTC: an offset can push the first or last representable day out of range.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise MemoryInputError(
            f"{what} is out of range once converted to UTC; use a date between years 1 and 9999."
        ) from None


def tags(values: Sequence[str] | None) -> list[str]:
    """Tags: at most 64 distinct strings of 1-128 characters, order kept."""
    if not values:
        return []
    if len(values) > MAX_TAGS:
        raise MemoryInputError(f"tags has {len(values)} items; at most {MAX_TAGS} are allowed.")
    for tag in values:
        _clean_text(tag, "a tag")
        if not tag.strip() or len(tag) > MAX_TAG_CHARS:
            raise MemoryInputError(f"each tag must be 1-{MAX_TAG_CHARS} characters and not blank.")
    return list(dict.fromkeys(values))


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_METADATA_DEPTH:
        return level
    if isinstance(value, dict):
        for key, item in value.items():
            _clean_text(key, "a metadata key")
            if _depth(item, level + 1) > MAX_METADATA_DEPTH:
                return MAX_METADATA_DEPTH + 1
    elif isinstance(value, list):
        for item in value:
            if _depth(item, level + 1) > MAX_METADATA_DEPTH:
                return MAX_METADATA_DEPTH + 1
    elif isinstance(value, str):
        _clean_text(value, "a metadata value")
    return level


def metadata(value: dict[str, Any] | None) -> dict[str, Any]:
    """A JSON object of at most 16 KiB and 8 levels, with clean strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MemoryInputError('metadata must be a JSON object, such as {"source": "chat"}.')
    if _depth(value) > MAX_METADATA_DEPTH:
        raise MemoryInputError(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels; flatten it.")
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except ValueError:
        raise MemoryInputError("metadata must hold only finite numbers, strings, booleans and nulls.") from None
    if size > MAX_METADATA_BYTES:
        raise MemoryInputError(f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed.")
    return value


def memory_ids(values: Sequence[str] | None) -> list[uuid.UUID]:
    """Memory ids as UUIDs, at most 1,000 per call."""
    if not values:
        return []
    if len(values) > MAX_MEMORY_IDS:
        raise MemoryInputError(f"memory_ids has {len(values)} items; at most {MAX_MEMORY_IDS} per call.")
    parsed: list[uuid.UUID] = []
    for value in values:
        try:
            parsed.append(uuid.UUID(value))
        except (ValueError, TypeError, AttributeError):
            raise MemoryInputError(
                "memory_ids must be UUIDs as returned by retain or recall, such as "
                "'3f2b8c1e-5d4a-4b7e-9c0f-1a2b3c4d5e6f'."
            ) from None
    return parsed


def bounded(value: int, what: str, low: int, high: int) -> int:
    """An integer argument within [low, high]."""
    if not low <= value <= high:
        raise MemoryInputError(f"{what} must be between {low} and {high}; got {value}.")
    return value
