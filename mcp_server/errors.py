"""The one error model: every failure Bulkhead expects is a `BulkheadError` of one kind.

A kind says who can act on the failure and how; the message is one public sentence that names
no key, no password and no SQL. Where the operator needs more than a caller may see (which grant
to run), `detail` carries it to the log and the CLI, never to a tool caller.

Each surface maps kinds in exactly one place: MCP tool results and the per-call log line in
`server.calls`, CLI exit codes in `cli`, and HTTP statuses here in `HTTP_STATUS`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    """Who can fix a failure."""

    INVALID = "invalid"
    """The caller's input is wrong; the message says what to change."""
    NOT_FOUND = "not_found"
    """What the caller named does not exist (for this tenant)."""
    UNAVAILABLE = "unavailable"
    """A dependency (the database, an embedding service) is down; the same call may succeed later."""
    MISCONFIGURED = "misconfigured"
    """The operator must change a setting, a grant or the installation."""
    LIMITED = "limited"
    """A limit (size, quota, rate) refused the call."""


class BulkheadError(Exception):
    """The root of every expected failure; `message` is the one sentence to show."""

    kind: ClassVar[ErrorKind]

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    @property
    def for_operator(self) -> str:
        """What an operator should read: the detail when there is one, else the message."""
        return self.detail or self.message

    def __str__(self) -> str:
        # Logs and tracebacks are the operator's; public surfaces read `message` explicitly.
        return self.for_operator


class InvalidInput(BulkheadError):
    """An argument, option or value was refused."""

    kind = ErrorKind.INVALID


class NotFound(BulkheadError):
    """The named thing does not exist here."""

    kind = ErrorKind.NOT_FOUND


class Unavailable(BulkheadError):
    """A dependency cannot be reached right now; retrying may succeed."""

    kind = ErrorKind.UNAVAILABLE


class Misconfigured(BulkheadError):
    """Bulkhead cannot work as configured until the operator changes something."""

    kind = ErrorKind.MISCONFIGURED


class Limited(BulkheadError):
    """A configured limit refused the call."""

    kind = ErrorKind.LIMITED


HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.MISCONFIGURED: 500,
    ErrorKind.LIMITED: 429,
}
"""The HTTP status of each kind, for every HTTP surface (health checks, the dashboard)."""


def find_error(exc: BaseException) -> BulkheadError | None:
    """The `BulkheadError` that `exc` is, was caused by, or holds (in an exception group)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BulkheadError):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return None
