"""Provisioning: the shared vector extension, and each tenant schema's migrations.

A schema is migrated on its first use in a process, under a transaction-scoped advisory lock, so
two processes racing on a new schema apply each migration exactly once. The pending migrations
run in one transaction together with the rows that record them, under the schema's tenant role,
so the tenant role owns every object it creates (see `roles`).
"""

from __future__ import annotations

import logging

import anyio
import asyncpg

from mcp_server.db.migrations import Migration, load_migrations
from mcp_server.db.pool import connection_failures_as_unavailable
from mcp_server.errors import Misconfigured
from mcp_server.store.roles import prepare_tenant_schema, share_extension_schema, withhold_temporary_tables
from mcp_server.store.sql import EXTENSION_SCHEMA, SchemaNames, quote_identifier, render
from mcp_server.store.sql import catalog as sql
from mcp_server.store.sql.migrations import MigrationSQL
from mcp_server.store.sql.roles import RoleSQL

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING_DIM = 384
# The vector index is over `halfvec` copies (schema/0010_vector_index_half_precision.sql).
VECTOR_VERSION_REQUIRED = (0, 7)


def vector_version_supported(version: str) -> bool:
    """Whether pgvector `version` (its `extversion`, such as `0.8.1`) has what the schema needs."""
    parts = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    return parts >= VECTOR_VERSION_REQUIRED


class Provisioner:
    """Prepares the database once per process and each schema once per process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        embedding_dim: int = DEFAULT_EMBEDDING_DIM,
        migrations: list[Migration] | None = None,
    ) -> None:
        self.pool = pool
        self.embedding_dim = embedding_dim
        self.migrations = migrations if migrations is not None else load_migrations()
        self.vector_schema: str | None = None
        self._ready: set[str] = set()
        self._locks: dict[str, anyio.Lock] = {}

    @property
    def has_vector(self) -> bool:
        """Whether pgvector is installed, so vector columns and similarity are available."""
        return self.vector_schema is not None

    async def bootstrap(self) -> None:
        """Find or install the vector extension (in its own schema); lexical-only without it.

        Also takes TEMPORARY on the database from PUBLIC (see `roles.withhold_temporary_tables`).
        """
        with connection_failures_as_unavailable():
            await self._bootstrap()
        if self.vector_schema is None:
            logger.warning("pgvector is not available in this database: recall runs lexical-only")

    async def _bootstrap(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(sql.TRANSACTION_SETTINGS)
            await conn.execute(sql.ADVISORY_XACT_LOCK, "bulkhead:bootstrap")
            await withhold_temporary_tables(conn)
            self.vector_schema = await conn.fetchval(sql.VECTOR_SCHEMA)
            if self.vector_schema is None and await conn.fetchval(sql.VECTOR_AVAILABLE):
                try:
                    async with conn.transaction():
                        await conn.execute(sql.CREATE_EXTENSION_SCHEMA)
                        await conn.execute(sql.CREATE_VECTOR_EXTENSION)
                    self.vector_schema = EXTENSION_SCHEMA
                except asyncpg.InsufficientPrivilegeError:
                    pass
            if self.vector_schema is not None:
                version = await conn.fetchval(sql.VECTOR_VERSION)
                if not vector_version_supported(version):
                    raise Misconfigured(
                        f"the database has pgvector {version}, and Bulkhead needs 0.7 or later; install a newer "
                        "pgvector on the PostgreSQL server, then run `ALTER EXTENSION vector UPDATE` as a superuser"
                    )
            if self.vector_schema is not None and not await share_extension_schema(conn, self.vector_schema):
                self.vector_schema = None

    async def provision(self, schema: str) -> None:
        """Create `schema` if needed and apply every pending migration to it."""
        if schema in self._ready:
            return
        lock = self._locks.setdefault(schema, anyio.Lock())
        async with lock:
            if schema in self._ready:
                return
            names = SchemaNames(schema)
            roles, migrations = RoleSQL(names), MigrationSQL(names)
            with connection_failures_as_unavailable():
                await self._migrate(schema, roles, migrations)
            self._ready.add(schema)
        # Whoever still waits on the lock finds the schema ready; later callers never take it.
        self._locks.pop(schema, None)

    async def check(self) -> None:
        """Raise `Unavailable` unless the database answers now (`bootstrap` must have run)."""
        with connection_failures_as_unavailable():
            async with self.pool.acquire() as conn, conn.transaction(readonly=True):
                await conn.execute(sql.TRANSACTION_SETTINGS)
                await conn.fetchval(sql.PING)

    def forget(self, schema: str) -> None:
        """Treat `schema` as never provisioned by this process (it was dropped elsewhere)."""
        self._ready.discard(schema)

    def _can_apply(self, migration: Migration) -> bool:
        missing = migration.requires - ({"vector"} if self.has_vector else set())
        return not missing

    async def _migrate(self, schema: str, roles: RoleSQL, migrations: MigrationSQL) -> None:
        """Give the schema its role, then apply every pending migration, all in one transaction.

        One transaction (not one per migration) keeps a new tenant's first call short, and an
        upgrade all or nothing; the advisory lock makes a second process wait, then find nothing
        left to do.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(sql.TRANSACTION_SETTINGS)
            await conn.execute(sql.ADVISORY_XACT_LOCK, f"bulkhead:schema:{schema}")
            await prepare_tenant_schema(conn, schema, roles)
            await conn.execute(roles.set_role)
            await conn.execute(migrations.create_migrations_table)
            applied = {row["version"] for row in await conn.fetch(migrations.applied_versions)}
            done = []
            for migration in self.migrations:
                if migration.version in applied or not self._can_apply(migration):
                    continue
                await conn.execute(self._body(schema, migration))
                await conn.execute(migrations.record_version, migration.version, migration.name)
                done.append(migration.name)
        for name in done:
            logger.info("schema %s: applied migration %s", schema, name)

    def _body(self, schema: str, migration: Migration) -> str:
        return render(
            migration.template,
            schema=quote_identifier(schema),
            vector_schema=quote_identifier(self.vector_schema or EXTENSION_SCHEMA),
            embedding_dim=int(self.embedding_dim),
        )
