"""The five MCP tools. Each handler takes the bound tenant, calls `memory`, and shapes the result."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from mcp_server import memory
from mcp_server.memory.models import ForgetResult, ListBanksResult, RecallResult, ReflectResult, RetainResult
from mcp_server.server import rendering
from mcp_server.server.binding import bound_tenant, runtime_of
from mcp_server.store import DimensionMismatchError, ProvisioningError, TenantStore

logger = logging.getLogger(__name__)

Bank = Annotated[str, Field(description="Memory bank name: letters, digits, '.', '_' or '-'.")]
Timestamp = Annotated[str | None, Field(description="ISO 8601 date or date-time, e.g. '2024-05-08T13:45:00Z'.")]
Tags = Annotated[list[str] | None, Field(description="Tags; recall keeps memories carrying all of them.")]

UNAVAILABLE = "the memory database is unavailable right now; nothing was changed, so retry in a few seconds."
UNPREPARED = "this tenant's memory store could not be set up; the server log says why, so ask its operator."
DEFAULT_BANK = "default"


class UnavailableError(ToolError):
    """The database could not be reached; the call may be retried as it is."""


@asynccontextmanager
async def tenant_store(ctx: Context[Any, Any]) -> AsyncIterator[TenantStore]:
    """The bound tenant's store, with every failure turned into a sentence a model can act on."""
    try:
        yield await runtime_of(ctx).store_for(bound_tenant(ctx))
    except (memory.MemoryInputError, DimensionMismatchError) as exc:
        raise ToolError(str(exc)) from None
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError):
        logger.warning("database unavailable during a tool call", exc_info=True)
        raise UnavailableError(UNAVAILABLE) from None
    except ProvisioningError as exc:
        logger.error("%s", exc)
        raise ToolError(UNPREPARED) from None


def shaped(result: BaseModel, text: str) -> CallToolResult:
    """Structured content plus a readable text part."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=result.model_dump(mode="json"),
    )


def register_tools(server: MCPServer[Any]) -> None:
    """Add retain, recall, reflect, forget and list_banks to `server`."""

    @server.tool(
        annotations=ToolAnnotations(title="Retain a memory", read_only_hint=False, destructive_hint=False),
        description=(
            "Store text in long-term memory so it can be recalled later. Long content is split into "
            "several memories. Retaining again with the same document_id replaces that document. "
            "Creates the bank if it does not exist."
        ),
    )
    async def retain(
        ctx: Context[Any, Any],
        content: Annotated[str, Field(description="The text to remember.")],
        bank: Bank = DEFAULT_BANK,
        context: Annotated[str | None, Field(description="Where this came from or what it is about.")] = None,
        occurred_at: Timestamp = None,
        tags: Annotated[list[str] | None, Field(description="Tags to filter recall by.")] = None,
        document_id: Annotated[str | None, Field(description="Your id for this content; reuse it to replace.")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="A small JSON object kept as-is.")] = None,
    ) -> Annotated[CallToolResult, RetainResult]:
        async with tenant_store(ctx) as store:
            result = await memory.retain(
                store,
                content=content,
                bank=bank,
                context=context,
                occurred_at=occurred_at,
                tags=tags,
                document_id=document_id,
                metadata=metadata,
                max_content_bytes=runtime_of(ctx).settings.max_content_bytes,
                embedder=runtime_of(ctx).embedder,
            )
        return shaped(result, rendering.retained(result))

    @server.tool(
        annotations=ToolAnnotations(title="Recall memories", read_only_hint=True, idempotent_hint=True),
        description=(
            "Find the stored memories most relevant to a query, best first, within max_results and a "
            "token budget (tokens estimated as UTF-8 bytes / 4). Filter by tags (all must match) and "
            "by a time window on occurred_at (or retained_at when not given)."
        ),
    )
    async def recall(
        ctx: Context[Any, Any],
        query: Annotated[str, Field(description="What you want to remember, in your own words.")],
        bank: Bank = DEFAULT_BANK,
        max_results: Annotated[int, Field(description="At most this many memories (1-100).")] = 10,
        max_tokens: Annotated[int, Field(description="Token budget for the memories' text.")] = 2048,
        tags: Tags = None,
        since: Timestamp = None,
        until: Timestamp = None,
    ) -> Annotated[CallToolResult, RecallResult]:
        async with tenant_store(ctx) as store:
            result = await memory.recall(
                store,
                query=query,
                bank=bank,
                max_results=max_results,
                max_tokens=max_tokens,
                tags=tags,
                since=since,
                until=until,
                embedder=runtime_of(ctx).embedder,
            )
        return shaped(result, rendering.recalled(result))

    @server.tool(
        annotations=ToolAnnotations(title="Answer from memory", read_only_hint=True),
        description=(
            "Answer a question from the bank's memories. The answer cites the ids of the memories it "
            "used; mode says how it was made."
        ),
    )
    async def reflect(
        ctx: Context[Any, Any],
        query: Annotated[str, Field(description="The question to answer from memory.")],
        bank: Bank = DEFAULT_BANK,
        max_tokens: Annotated[int, Field(description="Token budget for the answer.")] = 1024,
    ) -> Annotated[CallToolResult, ReflectResult]:
        async with tenant_store(ctx) as store:
            result = await memory.reflect(
                store, query=query, bank=bank, max_tokens=max_tokens, embedder=runtime_of(ctx).embedder
            )
        return shaped(result, rendering.reflected(result))

    @server.tool(
        annotations=ToolAnnotations(title="Forget memories", read_only_hint=False, destructive_hint=True),
        description=(
            "Permanently delete memories from a bank: pass memory_ids (from retain or recall) or a "
            "document_id to delete that whole document."
        ),
    )
    async def forget(
        ctx: Context[Any, Any],
        bank: Bank,
        memory_ids: Annotated[list[str] | None, Field(description="Ids of the memories to delete.")] = None,
        document_id: Annotated[str | None, Field(description="Delete every memory of this document.")] = None,
    ) -> Annotated[CallToolResult, ForgetResult]:
        async with tenant_store(ctx) as store:
            result = await memory.forget(store, bank=bank, memory_ids=memory_ids, document_id=document_id)
        return shaped(result, rendering.forgotten(result, bank))

    @server.tool(
        annotations=ToolAnnotations(title="List memory banks", read_only_hint=True, idempotent_hint=True),
        description="List your memory banks with how many memories and documents each holds.",
    )
    async def list_banks(ctx: Context[Any, Any]) -> Annotated[CallToolResult, ListBanksResult]:
        async with tenant_store(ctx) as store:
            result = await memory.list_banks(store)
        return shaped(result, rendering.banks(result))
