"""The asyncpg connection pool, on the configured PostgreSQL or the embedded one."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
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


class Waiting:
    """How many callers are waiting for a connection of a pool right now (for `/metrics`)."""

    def __init__(self) -> None:
        self.count = 0

    @asynccontextmanager
    async def acquire(self, pool: asyncpg.Pool) -> AsyncIterator[Connection]:
        """`pool.acquire()`, counted while it waits."""
        self.count += 1
        try:
            conn = await pool.acquire()
        finally:
            self.count -= 1
        try:
            yield conn
        finally:
            await pool.release(conn)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def database_url(settings: Settings) -> str:
    """The configured URL, or that of the embedded PostgreSQL (started on demand)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return await start_embedded(settings.data_dir)


ConnectionHook = Callable[[asyncpg.Connection], Awaitable[None]]


# asyncpg's own default size of its per-connection statement cache.
ASYNCPG_STATEMENT_CACHE = 100


def statement_cache_size(settings: Settings) -> int:
    """asyncpg's prepared-statement cache, off behind a transaction pooler.

    asyncpg names and caches a prepared statement per connection; a transaction-mode pooler
    (PgBouncer before 1.21, or without `max_prepared_statements`) hands each transaction any
    server connection, where that name is unknown or means another statement. With the cache
    off, asyncpg prepares every statement unnamed, inside the transaction that runs it.
    """
    return 0 if settings.database_pooler == "transaction" else ASYNCPG_STATEMENT_CACHE


async def create_pool(settings: Settings, *, on_connect: ConnectionHook | None = None) -> asyncpg.Pool:
    """Open the pool. Nothing a statement relies on is set per connection: behind a transaction
    pooler a connection is not ours between transactions, so the empty search path, JIT off and
    pgvector's search parameters are set with `SET LOCAL` by each transaction
    (`store.sql.catalog.TRANSACTION_SETTINGS`). Only `application_name` is given at connect.

    `on_connect` runs on each new connection after the built-in codecs are set, in a
    transaction of its own, so that a pooler keeps its statements on one server connection.
    """
    url = await database_url(settings)

    async def init(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await _init_connection(conn)
            if on_connect is not None:
                await on_connect(conn)

    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            init=init,
            statement_cache_size=statement_cache_size(settings),
            # A connection is replaced after this many queries: a backend's catalog caches grow
            # with every tenant schema it touches, and this bounds them (see docs/scaling.md).
            max_queries=settings.pool_max_queries,
            # The one setting PgBouncer itself carries to server connections; it names the
            # server's connections in pg_stat_activity.
            server_settings={"application_name": "bulkhead"},
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from exc
    assert pool is not None
    return pool
