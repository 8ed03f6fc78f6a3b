"""The call path every tool call takes: bind the tenant, open its store, map errors, log a line.

This is the one place where a `BulkheadError` becomes an MCP tool error and a log outcome, and
where an argument refused by the input schema becomes one sentence. The line (logger
`mcp_server.calls`, to stderr) carries the tenant label, the tool, the bank, the outcome and the
duration; never content, never a key. Values the caller chose appear only when they are known
tool names or valid bank names, so the line is always one parseable line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ValidationError

from mcp_server.errors import BulkheadError, ErrorKind
from mcp_server.memory.arguments import RULES
from mcp_server.memory.validation import BANK_NAME
from mcp_server.runtime import Runtime
from mcp_server.server.binding import Binding
from mcp_server.store import TenantStore
from mcp_server.tenancy import Tenant

logger = logging.getLogger("mcp_server.calls")

T = TypeVar("T")

OUTCOME: dict[ErrorKind, str] = {
    ErrorKind.INVALID: "rejected",
    ErrorKind.NOT_FOUND: "rejected",
    ErrorKind.LIMITED: "limited",
    ErrorKind.UNAVAILABLE: "unavailable",
    ErrorKind.MISCONFIGURED: "error",
}
"""The log outcome of each error kind; a tool error with no kind is `error` (a crash)."""

# Pydantic error types that mean "outside the bounds" rather than "of the wrong type".
BOUND_ERRORS = frozenset(
    {
        "string_pattern_mismatch",
        "string_too_long",
        "string_too_short",
        "too_long",
        "too_short",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
    }
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """What a handler works with: the bound tenant, its open store, and the runtime."""

    tenant: Tenant
    store: TenantStore
    runtime: Runtime


_current: ContextVar[ToolCall] = ContextVar("bulkhead_tool_call")


def this_call() -> ToolCall:
    """The call being handled; set by `perform` around the handler, in the handler's own task."""
    return _current.get()


def tool_error(tool: str, message: str) -> ToolError:
    """A tool error whose text reads as the SDK's own: `Error executing tool NAME: sentence`."""
    return ToolError(f"Error executing tool {tool}: {message}")


def describe_invalid_arguments(tool: str, error: ValidationError) -> str:
    """The sentence for arguments the input schema refused; never echoes a value.

    A value outside its argument's bounds gets that argument's rule (`arguments.RULES`), as the
    same value would from `memory`; anything else names each bad argument and what is wrong.
    """
    problems: list[str] = []
    rules: list[str] = []
    for item in error.errors(include_url=False, include_input=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        if item["type"] in BOUND_ERRORS and field in RULES:
            rules.append(RULES[field])
            continue
        if item["type"] == "string_unicode":
            rules.append(f"{where} contains an unpaired surrogate, which is not valid Unicode; send valid UTF-8 text.")
            continue
        problems.append(f"{where}: {item['msg']}" if item["type"] != "missing" else f"{where} is required")
    if problems:
        return f"invalid arguments for {tool}: {'; '.join(problems + [r.rstrip('.') for r in rules])}."
    return f"Error executing tool {tool}: {' '.join(dict.fromkeys(rules))}"


async def perform(
    tool: str | None,
    default_bank: str | None,
    arguments: dict[str, Any],
    runtime: Runtime,
    binding: Binding,
    invoke: Callable[[], Awaitable[T]],
) -> T:
    """Run one tool call (`invoke`) for the bound tenant; `tool` is None for an unknown name."""
    started = time.perf_counter()
    outcome, label = "error", "-"
    try:
        tenant = binding.tenant()
        label = tenant.label
        runtime.admit(tenant)
        if tool is None:
            outcome = "rejected"
            return await invoke()
        call = ToolCall(tenant, await runtime.store_for(tenant), runtime)
        token = _current.set(call)
        try:
            result = await invoke()
        finally:
            _current.reset(token)
        outcome = "ok"
        return result
    except BulkheadError as exc:
        outcome = OUTCOME[exc.kind]
        raise _public(tool or "unknown", exc) from exc
    except ToolError as exc:
        cause = exc.__cause__
        if isinstance(cause, BulkheadError):
            outcome = OUTCOME[cause.kind]
            raise _public(tool or "unknown", cause) from cause
        if isinstance(cause, ValidationError):
            outcome = "rejected"
            raise ToolError(describe_invalid_arguments(tool or "unknown", cause)) from cause
        if tool is not None:
            outcome = "error" if isinstance(exc, UnexpectedToolError) else "rejected"
        raise
    finally:
        bank = arguments.get("bank", default_bank)
        seconds = time.perf_counter() - started
        logger.info(
            "tool call tenant=%s tool=%s bank=%s outcome=%s duration_ms=%.1f",
            label,
            tool or "unknown",
            bank if tool and isinstance(bank, str) and BANK_NAME.fullmatch(bank) else "-",
            outcome,
            seconds * 1000,
        )
        for observe in runtime.call_observers:
            observe(label, tool or "unknown", outcome, seconds)


def _public(tool: str, error: BulkheadError) -> ToolError:
    if error.detail:
        logger.error("%s", error.detail)
    return tool_error(tool, error.message)
