"""Around every tool call: one readable sentence for bad arguments, and one log line.

The log line (logger `mcp_server.calls`, to stderr) carries the tenant label, the tool, the bank,
the outcome and the duration; never content, never a key. Values the caller chose appear only
when they are known tool names or valid bank names, so the line is always one parseable line.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ValidationError

from mcp_server.memory.validation import BANK_NAME
from mcp_server.server.binding import bound_tenant
from mcp_server.server.runtime import Runtime
from mcp_server.server.tools import DEFAULT_BANK, UnavailableError

logger = logging.getLogger("mcp_server.calls")

# Tools whose `bank` argument defaults to DEFAULT_BANK when the caller leaves it out.
DEFAULT_BANK_TOOLS = frozenset({"retain", "recall", "reflect"})

PROBLEMS = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a JSON object",
    "none_required": "must be null",
}


def _field(loc: tuple[int | str, ...]) -> str:
    """`memory_ids[2]` from a pydantic location; names the caller invented are not echoed."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier() and len(part) <= 64:
            text += f".{part}" if text else part
        else:
            text += "[...]"
    return text or "arguments"


def argument_problem(tool: str, error: ValidationError) -> str:
    """One sentence for the first argument that fails the tool's input schema."""
    errors = error.errors(include_input=False, include_url=False)
    first = errors[0]
    problem = PROBLEMS.get(first["type"])
    if problem is None:
        message = str(first["msg"]).splitlines()[0].rstrip(".")
        problem = "is invalid: " + message[:1].lower() + message[1:]
    more = f" ({len(errors) - 1} more arguments are also invalid)" if len(errors) > 1 else ""
    return f"Error executing tool {tool}: argument {_field(tuple(first['loc']))} {problem}{more}; see the tool's input schema."


def _outcome(exc: ToolError) -> str:
    if isinstance(exc, UnexpectedToolError):
        return "error"
    if isinstance(exc.__cause__, UnavailableError):
        return "unavailable"
    return "rejected"


def _tenant_label(context: Context[Any, Any] | None) -> str:
    if context is None:
        return "-"
    try:
        return bound_tenant(context).label
    except Exception:
        return "-"


def _bank(tool: str, arguments: dict[str, Any]) -> str:
    bank = arguments.get("bank", DEFAULT_BANK if tool in DEFAULT_BANK_TOOLS else None)
    return bank if isinstance(bank, str) and BANK_NAME.fullmatch(bank) else "-"


class BulkheadServer(MCPServer[Runtime]):
    """An `MCPServer` whose tool calls each leave one log line and never a multi-line error."""

    _tool_names: frozenset[str] | None = None

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None) -> Any:
        """Run the tool, rewording argument-schema failures and logging the call."""
        started = time.perf_counter()
        if self._tool_names is None:
            self._tool_names = frozenset(tool.name for tool in await self.list_tools())
        tool = name if name in self._tool_names else "unknown"
        outcome = "error"
        try:
            if tool == "unknown":
                outcome = "rejected"
                raise ToolError(f"there is no such tool; the tools are {', '.join(sorted(self._tool_names))}.")
            result = await super().call_tool(name, arguments, context)
            outcome = "error" if getattr(result, "is_error", False) else "ok"
            return result
        except ToolError as exc:
            outcome = _outcome(exc)
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(argument_problem(name, exc.__cause__)) from exc.__cause__
            raise
        finally:
            logger.info(
                "tool call tenant=%s tool=%s bank=%s outcome=%s duration_ms=%.1f",
                _tenant_label(context),
                tool,
                _bank(tool, arguments),
                outcome,
                (time.perf_counter() - started) * 1000,
            )
