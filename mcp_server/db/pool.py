"""The asyncpg connection pool, on the configured PostgreSQL or the embedded one."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from mcp_server.config import Settings
from mcp_server.db.embedded import start_embedded
from mcp_server.errors import Unavailable

logger = logging.getLogger(__name__)

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""A connection as statements see it: a pool's proxy, or a raw one (in a pool's `init` hook)."""

DATABASE_UNAVAILABLE = "the memory database is unavailable right now; nothing was changed, so retry in a few seconds."

# What the driver raises when the server is gone, restarting, refusing or out of connections:
# a later attempt may succeed, unlike an error in the statement itself.
CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)


@contextmanager
def connection_failures_as_unavailable() -> Iterator[None]:
    """Turn a lost or refused connection inside the block into `Unavailable`."""
    try:
        yield
    except CONNECTION_FAILURES as exc:
        logger.warning("database unavailable: %s", type(exc).__name__, exc_info=True)
        raise Unavailable(DATABASE_UNAVAILABLE) from exc


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
        raise Unavailable(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from exc
    assert pool is not None
    return pool
