"""The asyncpg connection pool, on the configured PostgreSQL or the embedded one."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

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


ConnectionHook = Callable[[asyncpg.Connection], Awaitable[None]]

# pgvector's HNSW search settings. ef_search bounds how many neighbours one index scan can
# return, so it must exceed what recall asks for (100 candidates per leg at most); the
# iterative scan keeps going when the bank and tag filters discard what the index found first.
VECTOR_SEARCH_SETTINGS = {"hnsw.ef_search": "100", "hnsw.iterative_scan": "relaxed_order"}


async def create_pool(settings: Settings, *, on_connect: ConnectionHook | None = None) -> asyncpg.Pool:
    """Open the pool. Statements are schema-qualified, so the search path is left empty.

    `on_connect` runs on each new connection after the built-in codecs are set.
    """
    url = await database_url(settings)

    async def init(conn: asyncpg.Connection) -> None:
        await _init_connection(conn)
        if on_connect is not None:
            await on_connect(conn)

    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            init=init,
            # No statement may lean on an unqualified name; JIT only slows short queries.
            server_settings={
                "search_path": "",
                "jit": "off",
                "application_name": "bulkhead",
                **VECTOR_SEARCH_SETTINGS,
            },
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailableError(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from exc
    assert pool is not None
    return pool
