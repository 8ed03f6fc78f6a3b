"""Checks on every argument a caller sends, each failing with one sentence a model can act on.

The bounds come from `arguments`, the same definitions the tools publish; what no schema can say
(NUL characters, blank text, sizes in bytes, parsing a date) is checked only here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from mcp_server.errors import InvalidInput
from mcp_server.memory.arguments import (
    BANK_PATTERN,
    MAX_CONTEXT_CHARS,
    MAX_DOCUMENT_ID_CHARS,
    MAX_MEMORY_IDS,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_QUERY_CHARS,
    MAX_RESULTS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TOKENS,
    RULES,
)

# fullmatch, so a trailing newline (which `$` alone lets through) is refused.
BANK_NAME = re.compile(BANK_PATTERN)


def _clean_text(value: str, what: str) -> str:
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character; remove it and try again.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} contains an unpaired surrogate, which is not valid Unicode; send valid UTF-8 text."
        ) from None
    return value


def content(value: str, max_bytes: int) -> str:
    """Text to retain: not blank, clean, and within the byte limit."""
    _clean_text(value, "content")
    if not value.strip():
        raise InvalidInput("content is empty; pass the text you want to remember.")
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise InvalidInput(
            f"content is {size} bytes, over the limit of {max_bytes} bytes; split it into smaller "
            "documents and retain each one."
        )
    return value


def query(value: str) -> str:
    """A recall or reflect query: not blank, clean, and not absurdly long."""
    _clean_text(value, "query")
    if not value.strip():
        raise InvalidInput("query is empty; describe what you want to find.")
    if len(value) > MAX_QUERY_CHARS:
        raise InvalidInput(RULES["query"])
    return value.strip()


def bank(value: str) -> str:
    """A bank name: 1-64 of letters, digits, '.', '_' and '-', starting with a letter or digit."""
    if not isinstance(value, str) or not BANK_NAME.fullmatch(value):
        raise InvalidInput(RULES["bank"])
    return value


def context(value: str | None) -> str | None:
    """Optional free text about the content: clean and within its length."""
    if value is None:
        return None
    _clean_text(value, "context")
    if len(value) > MAX_CONTEXT_CHARS:
        raise InvalidInput(RULES["context"])
    return value


def document_id(value: str | None) -> str | None:
    """A caller-chosen document id: 1-256 characters, no control characters."""
    if value is None:
        return None
    _clean_text(value, "document_id")
    if not value.strip() or len(value) > MAX_DOCUMENT_ID_CHARS or any(ord(c) < 32 for c in value):
        raise InvalidInput(RULES["document_id"])
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
        raise InvalidInput(
            f"{what} is not an ISO 8601 date or date-time; use a form like '2024-05-08' or '2024-05-08T13:45:00Z'."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # Stored in UTC: an offset can push the first or last representable day out of range.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"{what} is out of range once converted to UTC; use a date between years 1 and 9999."
        ) from None


def tags(values: Sequence[str] | None) -> list[str]:
    """Tags: at most 64 distinct strings of 1-128 characters, order kept."""
    if not values:
        return []
    if len(values) > MAX_TAGS:
        raise InvalidInput(RULES["tags"])
    for tag in values:
        _clean_text(tag, "a tag")
        if not tag.strip() or len(tag) > MAX_TAG_CHARS:
            raise InvalidInput(RULES["tags"])
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
        raise InvalidInput('metadata must be a JSON object, such as {"source": "chat"}.')
    if _depth(value) > MAX_METADATA_DEPTH:
        raise InvalidInput(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels; flatten it.")
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except ValueError:
        raise InvalidInput("metadata must hold only finite numbers, strings, booleans and nulls.") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed.")
    return value


def memory_ids(values: Sequence[str] | None) -> list[uuid.UUID]:
    """Memory ids as UUIDs, at most 1,000 per call."""
    if not values:
        return []
    if len(values) > MAX_MEMORY_IDS:
        raise InvalidInput(RULES["memory_ids"])
    parsed: list[uuid.UUID] = []
    for value in values:
        try:
            parsed.append(uuid.UUID(value))
        except (ValueError, TypeError, AttributeError):
            raise InvalidInput(RULES["memory_ids"]) from None
    return parsed


def max_results(value: int) -> int:
    """How many memories recall may return."""
    if not 1 <= value <= MAX_RESULTS:
        raise InvalidInput(RULES["max_results"])
    return value


def max_tokens(value: int) -> int:
    """A token budget."""
    if not 1 <= value <= MAX_TOKENS:
        raise InvalidInput(RULES["max_tokens"])
    return value
