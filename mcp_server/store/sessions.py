"""`SessionStore`: the dashboard's sessions as rows shared by every server process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import anyio
import asyncpg

from mcp_server.db.pool import connection_failures_as_unavailable
from mcp_server.store.sql import catalog
from mcp_server.store.sql import sessions as sql


@dataclass(frozen=True, slots=True)
class SessionRow:
    """What a live session holds (the id itself is never stored, only its digest)."""

    schema: str
    key_binding: bytes
    csrf_secret: bytes


class SessionStore:
    """Creates its schema and table on first use; each call is one short transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._ready = False
        self._lock = anyio.Lock()

    async def _ensure(self) -> None:
        """Create the schema and table once per process (every statement is idempotent)."""
        async with self._lock:
            if not self._ready:
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute(catalog.ADVISORY_XACT_LOCK, "bulkhead:web-sessions")
                    for statement in (
                        sql.CREATE_SCHEMA,
                        sql.REVOKE_FROM_PUBLIC,
                        sql.CREATE_TABLE,
                        sql.CREATE_EXPIRY_INDEX,
                    ):
                        await conn.execute(statement)
                self._ready = True

    async def create(self, id_digest: bytes, row: SessionRow, *, idle: timedelta, lifetime: timedelta) -> None:
        """Store a new session, and drop the expired ones while at it."""
        with connection_failures_as_unavailable():
            await self._ensure()
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(sql.DELETE_EXPIRED)
                await conn.execute(sql.INSERT, id_digest, row.schema, row.key_binding, row.csrf_secret, idle, lifetime)

    async def touch(self, id_digest: bytes, *, idle: timedelta) -> SessionRow | None:
        """The live session with this digest, its idle expiry renewed; None if none is live."""
        with connection_failures_as_unavailable():
            await self._ensure()
            async with self.pool.acquire() as conn:
                found = await conn.fetchrow(sql.TOUCH, id_digest, idle)
        if found is None:
            return None
        return SessionRow(found["schema_name"], bytes(found["key_binding"]), bytes(found["csrf_secret"]))

    async def delete(self, id_digest: bytes) -> None:
        """End the session (nothing happens if it is gone already)."""
        with connection_failures_as_unavailable():
            await self._ensure()
            async with self.pool.acquire() as conn:
                await conn.execute(sql.DELETE, id_digest)
