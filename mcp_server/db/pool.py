"""The asyncpg connection pool, on the configured PostgreSQL or the embedded one."""

from __future__ import annotations

import json
import logging

import asyncpg

from mcp_server.config import Settings
from mcp_server.db.embedded import start_embedded

logger = logging.getLogger(__name__)


class DatabaseUnavailableError(RuntimeError):
    """PostgreSQL cannot be reached; the message is safe to show (it holds no password)."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def database_url(settings: Settings) -> str:
    """The configured URL, or that of the embedded PostgreSQL (started on demand)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return await start_embedded(settings.data_dir)


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """Open the pool. Statements are schema-qualified, so the search path is left empty."""
    url = await database_url(settings)
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            init=_init_connection,
            # No statement may lean on an unqualified name; JIT only slows short queries.
            server_settings={"search_path": "", "jit": "off", "application_name": "bulkhead"},
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailableError(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from exc
    assert pool is not None
    return pool
