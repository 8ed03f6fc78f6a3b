"""Serving one stdio session: the agent host launched this process for one tenant.

The SDK's own stdio transport reads stdin in a worker thread that a cancellation must wait
for, so a signal could not stop the server until another line (or the end of input) arrived.
Here `stdio_wire` carries the messages, and nothing waits for a read in progress: SIGINT,
SIGTERM and SIGHUP stop the server at once, a tool call in flight is abandoned (its transaction
rolls back, so nothing half-written remains), the pool closes and the hold on the embedded
PostgreSQL is released.

A failure before the session starts (a wrong key, a database that cannot be reached) is
answered to the client's first request as a JSON-RPC error carrying the same one line that
goes to stderr, because agent hosts show what the client reports and hide stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from contextlib import AsyncExitStack

import anyio
import anyio.abc
import mcp_types as types
from mcp.shared.message import SessionMessage

from mcp_server.config import Settings
from mcp_server.errors import BulkheadError, Misconfigured
from mcp_server.runtime import ForeignVectors, Runtime, open_runtime
from mcp_server.server.app import build_server
from mcp_server.server.binding import FixedTenant
from mcp_server.server.stdio_wire import stdio_streams
from mcp_server.tenancy import Tenant, TenantDirectory

logger = logging.getLogger(__name__)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STARTUP_FAILED = -32603
"""The JSON-RPC error code of the reply to a client whose server could not start (internal error)."""
MAX_REFUSALS = 4
"""How many requests a client whose server could not start gets answered before the process exits."""
TERMINAL_HINT = (
    "bulkhead: waiting for an MCP client on stdin; an agent host starts this command itself "
    "(see the README), so to try it here run `bulkhead smoke`. Ctrl-C stops."
)


def stdio_tenant(settings: Settings, directory: TenantDirectory) -> Tenant:
    """The tenant of a stdio session: the one `BULKHEAD_API_KEY` maps to, or the default."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    if not directory.auth_enabled:
        if key and not settings.auth_configured:
            raise Misconfigured(
                "BULKHEAD_API_KEY is set but no key map is: set BULKHEAD_TENANT_KEY_MAP or BULKHEAD_TENANT_KEY_FILE "
                f"to map it to a schema, or unset BULKHEAD_API_KEY to use schema {directory.default.schema}"
            )
        return directory.default
    if not key:
        raise Misconfigured("auth is on and BULKHEAD_API_KEY is not set; set it to your tenant's API key")
    tenant = directory.resolve(key)
    if tenant is None:
        raise Misconfigured("BULKHEAD_API_KEY is not a known key; check it against the server's key map")
    return tenant


async def serve_stdio(settings: Settings, directory: TenantDirectory) -> None:
    """Answer MCP on stdin/stdout for the tenant of `BULKHEAD_API_KEY` until stdin closes or a signal.

    A start-up failure is raised after it has been answered to the client's first request.
    """
    async with AsyncExitStack() as stack:
        try:
            tenant = stdio_tenant(settings, directory)
            runtime = await stack.enter_async_context(open_runtime(settings, directory))
            await _provision(runtime, tenant)
        except BulkheadError as error:
            await refuse_session(error)
            raise
        await _serve(runtime, tenant)


async def _provision(runtime: Runtime, tenant: Tenant) -> None:
    """Set up the one tenant now, so that a database it cannot use stops start-up, not every call."""
    # A schema whose vectors are not the embedder's still serves: every tool call says how to fix it.
    with contextlib.suppress(ForeignVectors):
        await runtime.store_for(tenant)


async def _serve(runtime: Runtime, tenant: Tenant) -> None:
    server = build_server(runtime, FixedTenant(tenant))
    async with anyio.create_task_group() as tasks:
        await tasks.start(_stop_on_signal, tasks.cancel_scope)
        logger.info("serving stdio for tenant %s", tenant.label)
        if os.isatty(0):
            print(TERMINAL_HINT, file=sys.stderr, flush=True)
        async with stdio_streams() as (incoming, outgoing):
            await server.serve_connection(incoming, outgoing)
        tasks.cancel_scope.cancel()


async def _stop_on_signal(scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    """Cancel `scope` on the first stop signal; reports itself started once the signals are caught."""
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        task_status.started()
        async for received in signals:
            logger.info("stopping on %s", signal.Signals(received).name)
            scope.cancel()
            return


async def refuse_session(error: BulkheadError) -> None:
    """Answer the client's requests with `error` until it gives up, unless a person is at a terminal.

    A client of the handshake-era protocol sends `initialize` first; one of the 2026 revision
    first asks `server/discover` and, refused, falls back to `initialize`. Answering `initialize`
    (or a few requests of any kind) is therefore the end of it.
    """
    if os.isatty(0):
        return
    answered = 0
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tasks:
            await tasks.start(_stop_on_signal, scope)
            async with stdio_streams() as (incoming, outgoing):
                async for item in incoming:
                    if not (isinstance(item, SessionMessage) and isinstance(item.message, types.JSONRPCRequest)):
                        continue
                    refusal = types.JSONRPCError(
                        jsonrpc="2.0",
                        id=item.message.id,
                        error=types.ErrorData(code=STARTUP_FAILED, message=error.for_operator),
                    )
                    await outgoing.send(SessionMessage(refusal))
                    answered += 1
                    if item.message.method == "initialize" or answered >= MAX_REFUSALS:
                        break
            tasks.cancel_scope.cancel()
