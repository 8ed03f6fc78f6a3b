"""One log line for every tool call.

The line (logger `mcp_server.calls`, to stderr) carries the tenant label, the tool, the bank,
the outcome and the duration; never content, never a key. Values the caller chose appear only
when they are known tool names or valid bank names, so the line is always one parseable line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError

from mcp_server.memory.validation import BANK_NAME
from mcp_server.server.binding import bound_tenant
from mcp_server.server.tools import DEFAULT_BANK, UnavailableError

logger = logging.getLogger("mcp_server.calls")

# Tools whose `bank` argument defaults to DEFAULT_BANK when the caller leaves it out.
DEFAULT_BANK_TOOLS = frozenset({"retain", "recall", "reflect"})


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


@contextmanager
def logged_call(tool: str | None, arguments: dict[str, Any], context: Context[Any, Any] | None) -> Iterator[None]:
    """Log one line when the call inside ends; `tool` is None for a name that is not a tool."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except ToolError as exc:
        outcome = "rejected" if tool is None else _outcome(exc)
        raise
    finally:
        logger.info(
            "tool call tenant=%s tool=%s bank=%s outcome=%s duration_ms=%.1f",
            _tenant_label(context),
            tool or "unknown",
            _bank(tool, arguments) if tool else "-",
            outcome,
            (time.perf_counter() - started) * 1000,
        )
