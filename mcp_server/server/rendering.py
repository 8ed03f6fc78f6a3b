"""The readable text part of each tool result (the structured part carries the same facts)."""

from __future__ import annotations

from mcp_server.memory.models import ForgetResult, ListBanksResult, RecallResult, ReflectResult, RetainResult


def memories(count: int) -> str:
    """`1 memory`, `3 memories`."""
    return f"{count} memory" if count == 1 else f"{count} memories"


def retained(result: RetainResult) -> str:
    """One line: how many memories, which bank and document."""
    return f"Retained {memories(len(result.memory_ids))} in bank {result.bank!r} as document {result.document_id!r}."


def recalled(result: RecallResult) -> str:
    """A numbered list of memories with their date and id."""
    if not result.memories:
        return f"No memories in bank {result.bank!r} match this query."
    lines = [f"{memories(len(result.memories))} from bank {result.bank!r}, best first:"]
    for number, memory in enumerate(result.memories, start=1):
        when = f" ({memory.occurred_at})" if memory.occurred_at else ""
        lines.append(f"{number}. {memory.text}{when} [id {memory.id}]")
    if result.truncated:
        lines.append("More matches were left out by max_results or max_tokens.")
    return "\n".join(lines)


def reflected(result: ReflectResult) -> str:
    """The answer followed by the ids it cites."""
    if not result.citations:
        return result.answer
    return f"{result.answer}\n\nSources: {', '.join(result.citations)}"


def forgotten(result: ForgetResult, bank: str) -> str:
    """One line: how many memories went."""
    return f"Deleted {memories(result.deleted)} from bank {bank!r}."


def banks(result: ListBanksResult) -> str:
    """One line per bank."""
    if not result.banks:
        return "No banks yet; retain something to create one."
    return "\n".join(
        f"{b.bank}: {b.memories} memories in {b.documents} documents"
        + (f", last retained {b.last_retained_at}" if b.last_retained_at else "")
        for b in result.banks
    )
