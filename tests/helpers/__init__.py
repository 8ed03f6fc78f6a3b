"""Helpers shared by every test folder: unique names, the `bulkhead` command, stdio and in-process
MCP clients, and tool calls that must pass or fail.

`helpers.http` holds the HTTP transport's, `helpers.embedding_stub` the OpenAI-compatible embeddings
stub, and `helpers.inspector` the MCP Inspector CLI's. Fixtures live in `tests/conftest.py`; test
modules import from here, never from one another.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.stdio import stdio_client as raw_stdio_client

REPO = Path(__file__).resolve().parents[2]


def unique(prefix: str) -> str:
    """A name no other test uses: for schemas, banks and keys."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def server_env(pg_url: str | None, **settings: str) -> dict[str, str]:
    """The environment of a spawned server: this one, minus inherited BULKHEAD_*, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_")}
    if pg_url is not None:
        env["BULKHEAD_DATABASE_URL"] = pg_url
        # Set by conftest when the session's database is reached through PgBouncer.
        if os.environ.get("BULKHEAD_DATABASE_POOLER"):
            env["BULKHEAD_DATABASE_POOLER"] = os.environ["BULKHEAD_DATABASE_POOLER"]
    env["BULKHEAD_LOG_LEVEL"] = "WARNING"
    # Tests fire calls far faster than any tenant's default rate; the quota tests set their own.
    env["BULKHEAD_TENANT_CALLS_PER_SECOND"] = "0"
    env.update({f"BULKHEAD_{k.upper()}": v for k, v in settings.items()})
    return env


def run_bulkhead(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `bulkhead ARGS` (as `python -m mcp_server`) to completion, feeding it `stdin` (or nothing)."""
    return subprocess.run(
        [sys.executable, "-m", "mcp_server", *args],
        env=env,
        cwd=REPO,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clear_bulkhead_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every inherited BULKHEAD_* variable for the duration of a test."""
    for name in list(os.environ):
        if name.startswith("BULKHEAD_"):
            monkeypatch.delenv(name)


def stdio_params(env: dict[str, str], *args: str) -> StdioServerParameters:
    """Parameters to spawn `bulkhead serve` (as `python -m mcp_server`) with `env`."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server", *(args or ("serve",))], env=env, cwd=str(REPO)
    )


@asynccontextmanager
async def stdio_client(env: dict[str, str], errlog: TextIO | None = None) -> AsyncIterator[Client]:
    """A real MCP client session with a freshly spawned stdio server (its stderr to `errlog`)."""
    transport = raw_stdio_client(stdio_params(env), errlog=errlog or sys.stderr)
    # The timeout only turns a hung request into a failure instead of a stuck suite.
    async with Client(transport, mode="legacy", read_timeout_seconds=60) as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text if result.content else result
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail as a tool error; return the error text."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return result.content[0].text


async def connect(pg_url: str) -> asyncpg.Connection:
    """A direct connection, for checking what the server wrote."""
    return await asyncpg.connect(pg_url)


# Words that would mean a reply carries internals: a traceback, SQL, or the database driver.
INTERNALS = re.compile(
    r"traceback|asyncpg|psycopg|postgres|sqlstate|pg_catalog|syntax error|permission denied|"
    r"violates|relation \"|\bFile \"|exception|\bSELECT\b|\bINSERT INTO\b|\bDELETE FROM\b",
    re.IGNORECASE,
)


def internals_in(text: str, *echoed: str) -> list[str]:
    """Internal words found in `text`, after removing what the caller itself sent (`echoed`)."""
    for value in sorted(echoed, key=len, reverse=True):
        if value:
            text = text.replace(value, "").replace(repr(value), "")
    return INTERNALS.findall(text)


@asynccontextmanager
async def in_process_client(pg_url: str, schema: str, **settings: Any) -> AsyncIterator[Client]:
    """An MCP client connected in-process (no JSON framing) to a server bound to `schema`."""
    from mcp_server.config import load_settings
    from mcp_server.runtime import open_runtime
    from mcp_server.server.app import build_server
    from mcp_server.server.binding import FixedTenant
    from mcp_server.tenancy import TenantDirectory

    settings.setdefault("tenant_calls_per_second", 0)  # as in `server_env`
    loaded = load_settings(_env_file=None, database_url=pg_url, default_schema=schema, **settings)
    directory = TenantDirectory.from_settings(loaded)
    async with (
        open_runtime(loaded, directory) as runtime,
        Client(build_server(runtime, FixedTenant(directory.default))) as client,
    ):
        yield client


async def full_text(store: Any, bank: str, query: str, **filters: Any) -> list[Any]:
    """The memories a store's full-text search finds for `query` (no vector), in retained order."""
    from datetime import timedelta

    from mcp_server.store import SearchRequest

    found = await store.search(
        SearchRequest(
            bank=bank,
            ranked_query=query,
            tags=filters.get("tags") or (),
            since=filters.get("since"),
            until=filters.get("until"),
            per_leg=10,
            neighbour_window=timedelta(0),
        )
    )
    return [c.memory for c in found if c.lexical]
