"""Teaching each new connection pgvector's binary format, wherever the extension lives."""

from __future__ import annotations

import asyncpg
from pgvector.asyncpg import register_vector

from mcp_server.store.sql import catalog as sql


async def register_vector_codec(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Register the `vector` codec on a new connection if pgvector is installed (else do nothing).

    The search path is empty, so the type is looked up in the extension's own schema.
    """
    schema = await conn.fetchval(sql.VECTOR_SCHEMA)
    if schema is not None:
        await register_vector(conn, schema=schema)
