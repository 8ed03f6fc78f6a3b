"""Teaching each new connection pgvector's binary format, wherever the extension lives."""

from __future__ import annotations

import asyncpg
from pgvector.asyncpg import register_vector

from mcp_server.store import templates as sql


async def register_vector_codec(conn: asyncpg.Connection) -> None:
    """Register the `vector` codec if pgvector is installed (a no-op otherwise).

    The search path is empty, so the type is looked up in the extension's own schema.
    """
    schema = await conn.fetchval(sql.VECTOR_SCHEMA)
    if schema is not None:
        await register_vector(conn, schema=schema)
