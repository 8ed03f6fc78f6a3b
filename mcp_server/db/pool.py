"""The asyncpg connection pool, on the configured PostgreSQL or the embedded one."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from mcp_server.config import Settings
from mcp_server.db.embedded import start_embedded, stop_embedded
from mcp_server.errors import BulkheadError, Misconfigured, Unavailable

logger = logging.getLogger(__name__)

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""A connection as statements see it: a pool's proxy, or a raw one (in a pool's `init` hook)."""
Pooled: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
"""A connection lent by the pool, to be released to it."""

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

    async def connection(self, pool: asyncpg.Pool) -> Pooled:
        """`pool.acquire()`, counted while it waits; the caller releases the connection."""
        self.count += 1
        try:
            conn: Pooled = await pool.acquire()
        finally:
            self.count -= 1
        return conn


class LateCommits:
    """Read-only transactions committed after their caller has its answer.

    A read-only transaction has nothing left to lose or keep when its last statement returns:
    its COMMIT only ends it. So the caller may go on (and answer its tool call) while a task of
    this pool sends the COMMIT and then releases the connection: one round trip less on every
    read. The transaction is `READ ONLY`, so PostgreSQL itself guarantees it changed nothing.
    """

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[None]] = set()

    def commit_then_release(self, pool: asyncpg.Pool, conn: Pooled, commit: str) -> None:
        """End `conn`'s read-only transaction with `commit`, then hand `conn` back to `pool`."""
        task = asyncio.get_running_loop().create_task(self._finish(pool, conn, commit))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _finish(pool: asyncpg.Pool, conn: Pooled, commit: str) -> None:
        try:
            await conn.execute(commit)
        except Exception as exc:
            # Nothing was written, so nothing is lost; the release rolls back or closes the connection.
            logger.warning("ending a read-only transaction failed: %s", type(exc).__name__)
        try:
            await pool.release(conn)
        except Exception as exc:
            logger.warning("releasing a connection failed: %s", type(exc).__name__)

    @property
    def pending(self) -> int:
        """Read-only transactions still being committed."""
        return len(self._pending)

    async def settle(self) -> None:
        """Wait until every read-only transaction handed over so far has ended."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _decode_json(text: str) -> Any:
    # Most memories carry no metadata, and recall reads a few hundred rows at a time.
    return {} if text == "{}" else json.loads(text)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=_decode_json, schema="pg_catalog")


async def database_url(settings: Settings) -> str:
    """The configured URL, or that of the embedded PostgreSQL (started on demand)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return await start_embedded(settings.data_dir)


async def release_database(settings: Settings) -> None:
    """Let go of the embedded PostgreSQL, if this process used it (the last one out stops it)."""
    if settings.database_url is None:
        await stop_embedded(settings.data_dir)


USE_EMBEDDED = "or unset BULKHEAD_DATABASE_URL to use the embedded PostgreSQL"


def connect_failure(url: str, exc: BaseException) -> BulkheadError:
    """One line for a pool that could not open: what went wrong with which setting, and what to do.

    Names the host, port, user and database of the URL, never its password.
    """
    try:
        parts = urlsplit(url)
        # A Unix socket is named by a `host` parameter, not in the authority.
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        host = parts.hostname or socket_dir or "localhost"
        port, user = str(parts.port or 5432), parts.username or "?"
        database = parts.path.lstrip("/") or user
    except ValueError:
        host = port = user = database = "?"
    if host == "?":
        return Misconfigured(
            "BULKHEAD_DATABASE_URL cannot be read as a URL (is its port a number from 1 to 65535?); write it as "
            f"postgresql://USER:PASSWORD@HOST:PORT/DATABASE, {USE_EMBEDDED}"
        )
    where = f"PostgreSQL at {host}:{port}"
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return Unavailable(
                f"cannot connect to {where}: looking up {host} failed for now; retry, fix BULKHEAD_DATABASE_URL, "
                f"{USE_EMBEDDED}"
            )
        return Misconfigured(
            f"cannot connect to {where}: no host is called {host}; fix the host in BULKHEAD_DATABASE_URL, "
            f"{USE_EMBEDDED}"
        )
    if isinstance(exc, ConnectionRefusedError):
        return Unavailable(
            f"cannot connect to {where}: the connection was refused; start PostgreSQL there, fix "
            f"BULKHEAD_DATABASE_URL, {USE_EMBEDDED}"
        )
    if isinstance(exc, (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        return Misconfigured(
            f"cannot connect to {where}: it refused the login of user {user!r} ({type(exc).__name__}); fix the "
            f"user or password in BULKHEAD_DATABASE_URL, {USE_EMBEDDED}"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return Misconfigured(
            f"cannot connect to {where}: it has no database {database!r}; create it, fix BULKHEAD_DATABASE_URL, "
            f"{USE_EMBEDDED}"
        )
    if isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
        return Unavailable(f"cannot connect to {where}: {reason}; check BULKHEAD_DATABASE_URL, {USE_EMBEDDED}")
    if isinstance(exc, asyncpg.PostgresError):
        return Misconfigured(
            f"cannot connect to {where}: PostgreSQL refused with {type(exc).__name__}; check BULKHEAD_DATABASE_URL, "
            f"{USE_EMBEDDED}"
        )
    # What is left is the driver refusing the URL itself (a bad port, an unknown option).
    return Misconfigured(
        f"BULKHEAD_DATABASE_URL cannot be used ({type(exc).__name__}); write it as "
        f"postgresql://USER:PASSWORD@HOST:PORT/DATABASE, {USE_EMBEDDED}"
    )


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
    try:
        return await _open_pool(settings, url, on_connect)
    except BaseException:
        await release_database(settings)
        raise


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a released connection needs beyond asyncpg's rollback of an open transaction: nothing.

    Every transaction sets what it relies on, the tenant role included, with `SET LOCAL`, and
    takes only transaction-scoped advisory locks, so a released connection carries nothing of
    the last tenant; a transaction pooler would not reset it either. asyncpg's default reset
    (`RESET ALL`, `UNLISTEN *`, `CLOSE ALL`, unlocking advisory locks) would cost a round trip
    at the end of every tool call.
    """


async def _open_pool(settings: Settings, url: str, on_connect: ConnectionHook | None) -> asyncpg.Pool:
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
            reset=_keep_session,
        )
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise connect_failure(url, exc) from exc
    assert pool is not None
    return pool
