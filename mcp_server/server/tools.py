"""The tools, written once: each is a `ToolSpec` (what a model reads) and a handler of a few lines.

A handler takes its call (`calls.this_call()`: the bound tenant's store, opened by the call
path), calls `memory`, and shapes the result as structured content plus a readable text. Errors
are mapped by the call path, not here. To add a tool: its operation in `memory`, its result in
`memory.models`, and its spec, handler and text below.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from mcp_types import CallToolResult, CreateMessageResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from mcp_server.memory import operations, reflection
from mcp_server.memory.arguments import (
    BankName,
    ContextText,
    DocumentId,
    MaxResults,
    MaxTokens,
    MemoryIds,
    Metadata,
    QueryText,
    Tags,
    Timestamp,
)
from mcp_server.memory.models import ForgetResult, ListBanksResult, RecallResult, ReflectResult, RetainResult
from mcp_server.server.calls import this_call
from mcp_server.server.sampling import ask_client_model, gathered_evidence, synthesisers_for

DEFAULT_BANK = "default"

Bank = Annotated[BankName, Field(description="Memory bank.")]
# A date alone is accepted too; `format` already tells a model what a date-time looks like.
When = Timestamp | None


@dataclass(frozen=True)
class ToolSpec:
    """One tool as a model sees it, and the handler that serves it."""

    handler: Callable[..., Awaitable[CallToolResult]]
    title: str
    description: str
    use: str
    """What the tool is for, as the server's instructions list it ("retain to ...")."""
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False

    @property
    def name(self) -> str:
        return self.handler.__name__

    @cached_property
    def default_bank(self) -> str | None:
        """The bank a call without `bank` uses, if the tool has a default one (read once: every call asks)."""
        parameter = inspect.signature(self.handler).parameters.get("bank")
        default = parameter.default if parameter is not None else None
        return default if isinstance(default, str) else None

    @property
    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=self.destructive if not self.read_only else None,
            idempotent_hint=self.idempotent or None,
        )


def shaped(result: BaseModel, text: str) -> CallToolResult:
    """Structured content plus a readable text part."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=result.model_dump(mode="json")
    )


def counted(count: int, one: str = "memory", many: str = "memories") -> str:
    """`1 memory`, `3 memories`, `0 memories`; `counted(2, "document", "documents")`."""
    return f"{count} {one if count == 1 else many}"


async def retain(
    content: Annotated[str, Field(description="The text to remember.")],
    bank: Bank = DEFAULT_BANK,
    context: Annotated[ContextText | None, Field(description="Its source or topic.")] = None,
    occurred_at: Annotated[When, Field(description="When it happened (ISO 8601).")] = None,
    tags: Annotated[Tags | None, Field(description="Tags to filter recall by.")] = None,
    document_id: Annotated[DocumentId | None, Field(description="Your id for it; reuse it to replace.")] = None,
    metadata: Annotated[Metadata | None, Field(description="A small JSON object kept as-is.")] = None,
) -> Annotated[CallToolResult, RetainResult]:
    call = this_call()
    result = await operations.retain(
        call.store,
        content=content,
        bank=bank,
        context=context,
        occurred_at=occurred_at,
        tags=tags,
        document_id=document_id,
        metadata=metadata,
        max_content_bytes=call.runtime.settings.max_content_bytes,
        embedder=call.runtime.embedder,
        limits=call.runtime.directory.limits_for(call.tenant.schema),
    )
    stored = f"{counted(len(result.memory_ids))} in bank {result.bank!r} as document {result.document_id!r}"
    if result.already_stored:
        return shaped(result, f"Already stored: {stored}; nothing new was stored.")
    return shaped(result, f"Retained {stored}.")


async def recall(
    query: Annotated[QueryText, Field(description="What to look for, in your own words.")],
    bank: Bank = DEFAULT_BANK,
    max_results: MaxResults = 10,
    max_tokens: Annotated[MaxTokens, Field(description="Token budget for the memories' text.")] = 2048,
    tags: Annotated[Tags | None, Field(description="Keep memories carrying all of these.")] = None,
    since: When = None,
    until: When = None,
) -> Annotated[CallToolResult, RecallResult]:
    call = this_call()
    result = await operations.recall(
        call.store,
        query=query,
        bank=bank,
        max_results=max_results,
        max_tokens=max_tokens,
        tags=tags,
        since=since,
        until=until,
        embedder=call.runtime.embedder,
    )
    if not result.bank_exists:
        return shaped(result, f"Bank {result.bank!r} has no memories yet; retain stores some (and creates the bank).")
    if not result.memories:
        return shaped(result, f"No memories in bank {result.bank!r} match this query.")
    lines = [f"{counted(len(result.memories))} from bank {result.bank!r}, best first:"]
    for number, memory in enumerate(result.memories, start=1):
        when = f" ({memory.occurred_at})" if memory.occurred_at else ""
        lines.append(f"{number}. {memory.text}{when} [id {memory.id}]")
    if result.truncated:
        lines.append("More matches were left out by max_results or max_tokens.")
    return shaped(result, "\n".join(lines))


async def reflect(
    query: Annotated[QueryText, Field(description="The question to answer.")],
    bank: Bank = DEFAULT_BANK,
    max_tokens: Annotated[MaxTokens, Field(description="Token budget for the answer.")] = 1024,
    *,
    gathered: Annotated[reflection.Gathered, Resolve(gathered_evidence)],
    sampled: Annotated[CreateMessageResult | None, Resolve(ask_client_model)],
    ctx: Context[Any, Any],
) -> Annotated[CallToolResult, ReflectResult]:
    runtime = this_call().runtime
    synthesisers, fallback = synthesisers_for(runtime, ctx, sampled)
    result = await reflection.answer(gathered, max_tokens=max_tokens, synthesisers=synthesisers, fallback=fallback)
    lines = [result.answer]
    if result.citations:
        lines += ["", "Sources:", *(f"[{n}] {memory_id}" for n, memory_id in enumerate(result.citations, start=1))]
    if result.fallback:
        lines += ["", f"Answered by extraction: {result.fallback}."]
    return shaped(result, "\n".join(lines))


async def forget(
    bank: Bank,
    memory_ids: Annotated[MemoryIds | None, Field(description="Ids of the memories to delete.")] = None,
    document_id: Annotated[DocumentId | None, Field(description="Delete this whole document.")] = None,
    whole_bank: bool = False,
) -> Annotated[CallToolResult, ForgetResult]:
    call = this_call()
    result = await operations.forget(
        call.store, bank=bank, memory_ids=memory_ids, document_id=document_id, whole_bank=whole_bank
    )
    return shaped(result, f"Deleted {counted(result.deleted)} from bank {bank!r}.")


async def list_banks() -> Annotated[CallToolResult, ListBanksResult]:
    result = await operations.list_banks(this_call().store)
    if not result.banks:
        return shaped(result, "No banks yet; retain something to create one.")
    lines = [
        f"{b.bank}: {counted(b.memories)} in {counted(b.documents, 'document', 'documents')}"
        + (f", last retained {b.last_retained_at}" if b.last_retained_at else "")
        for b in result.banks
    ]
    return shaped(result, "\n".join(lines))


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        retain,
        title="Retain a memory",
        use="to store facts worth keeping",
        description=(
            "Store text in long-term memory. Long content is split into several "
            "memories. Retaining the same document_id again replaces that document. Creates the bank "
            "if needed."
        ),
    ),
    ToolSpec(
        recall,
        title="Recall memories",
        use="to look them up before answering",
        read_only=True,
        idempotent=True,
        description=(
            "Find the memories most relevant to a query, best first, within max_results and "
            "max_tokens (a token is 4 bytes of UTF-8). Filter by tags (all must match) and by a "
            "since/until window on occurred_at (else retained_at)."
        ),
    ),
    ToolSpec(
        reflect,
        title="Answer from memory",
        use="for an answer drawn from memory with citations",
        read_only=True,
        description=(
            "Answer a question from the bank's memories, citing the memory ids used; mode says how it was made."
        ),
    ),
    ToolSpec(
        forget,
        title="Forget memories",
        use="to delete",
        destructive=True,
        description=(
            "Permanently delete memory_ids (from retain or recall), a document_id, or the whole bank (whole_bank=true)."
        ),
    ),
    ToolSpec(
        list_banks,
        title="List memory banks",
        use="to see your banks",
        read_only=True,
        idempotent=True,
        description="Your memory banks, with how many memories and documents each holds.",
    ),
)


def instructions(tools: tuple[ToolSpec, ...] = TOOLS) -> str:
    """The server's instructions to a model, listing every tool by what it is for."""
    uses = [f"{tool.name} {tool.use}" for tool in tools]
    listed = ", ".join(uses[:-1]) + ", and " + uses[-1] if len(uses) > 1 else uses[0]
    return f"Long-term memory. Use {listed}. Banks separate topics; '{DEFAULT_BANK}' is used when none is given."


def tool_named(name: str) -> ToolSpec | None:
    """The tool called `name`, if there is one."""
    return next((tool for tool in TOOLS if tool.name == name), None)
