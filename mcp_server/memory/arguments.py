"""Every argument's bounds, defined once.

The constrained types below are what the tools declare, so the bounds appear in the input
schemas a model reads (`pattern`, `minimum`/`maximum`, `maxLength`, `maxItems`, `format`) and
the MCP layer refuses what breaks them before a tool runs. `validation` checks the same limits
for callers inside the process. `RULES` holds the one sentence that explains each argument's
bounds, whichever of the two refuses it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

BANK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
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
EXAMPLE_ID = "3f2b8c1e-5d4a-4b7e-9c0f-1a2b3c4d5e6f"

RULES: dict[str, str] = {
    "bank": (
        "bank must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit "
        "(for example 'default' or 'project-notes')."
    ),
    "query": f"query is longer than {MAX_QUERY_CHARS} characters; shorten it.",
    "context": f"context is longer than {MAX_CONTEXT_CHARS} characters; shorten it.",
    "document_id": f"document_id must be 1-{MAX_DOCUMENT_ID_CHARS} printable characters, such as 'notes-2024-05'.",
    "tags": f"tags may hold at most {MAX_TAGS} items, and each tag must be 1-{MAX_TAG_CHARS} characters and not blank.",
    "memory_ids": (
        f"memory_ids must be UUIDs as returned by retain or recall, such as '{EXAMPLE_ID}', "
        f"at most {MAX_MEMORY_IDS} per call."
    ),
    "max_results": f"max_results must be between 1 and {MAX_RESULTS}.",
    "max_tokens": f"max_tokens must be between 1 and {MAX_TOKENS}.",
}
"""The sentence for a value outside an argument's bounds, by argument name."""

DATE_TIME: dict[str, Any] = {"format": "date-time"}

BankName = Annotated[str, Field(pattern=BANK_PATTERN)]
QueryText = Annotated[str, Field(max_length=MAX_QUERY_CHARS)]
ContextText = Annotated[str, Field(max_length=MAX_CONTEXT_CHARS)]
DocumentId = Annotated[str, Field(min_length=1, max_length=MAX_DOCUMENT_ID_CHARS)]
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
MemoryId = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
MemoryIds = Annotated[list[MemoryId], Field(max_length=MAX_MEMORY_IDS)]
MaxResults = Annotated[int, Field(ge=1, le=MAX_RESULTS)]
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS)]
Timestamp = Annotated[str, Field(json_schema_extra=DATE_TIME)]
"""An ISO 8601 date or date-time; `validation.timestamp` parses it (a date alone is accepted too)."""
Metadata = dict[str, Any]
