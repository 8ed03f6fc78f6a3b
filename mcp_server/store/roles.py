"""Tenant roles: the NOLOGIN role that owns each tenant schema and runs its transactions.

Each schema is owned by its own role (`tenancy.tenant_role_name`), PUBLIC has no rights on it,
and the server's login role is a member of every tenant role so that a tenant transaction can
`SET LOCAL ROLE` to it. PostgreSQL then refuses any statement that names another tenant's table.

`public` is the exception: it exists before Bulkhead and other software may rely on it, so its
owner and its grants to PUBLIC are left alone. The tenant role is granted USAGE and CREATE on it
and owns Bulkhead's tables there; other roles have no rights on those tables.
"""

from __future__ import annotations

import logging

import asyncpg

from mcp_server.db.pool import Connection
from mcp_server.errors import Misconfigured
from mcp_server.store.sql import catalog as sql
from mcp_server.store.sql import quote_identifier
from mcp_server.store.sql.roles import RoleSQL
from mcp_server.tenancy import tenant_role_name

logger = logging.getLogger(__name__)

SHARED_SCHEMA = "public"
UNPREPARED = "this tenant's memory store could not be set up; the server log says why, so ask its operator."


def not_provisioned(detail: str) -> Misconfigured:
    """A schema that cannot be given its tenant role: callers read UNPREPARED, the operator `detail`."""
    return Misconfigured(UNPREPARED, detail=detail)


async def prepare_tenant_schema(conn: Connection, schema: str, statements: RoleSQL) -> None:
    """Create (or check) the tenant role, give it the schema, and let this login use it.

    Runs inside the caller's transaction, under the schema's advisory lock.
    """
    role = tenant_role_name(schema)
    await _refuse_extension_schema(conn, schema)
    await _ensure_role(conn, role, statements)
    if not await conn.fetchval(sql.CAN_SET_ROLE, role):
        try:
            async with conn.transaction():
                await conn.execute(statements.grant_role_to_login)
        except asyncpg.InsufficientPrivilegeError:
            raise not_provisioned(
                f"the database login cannot take on role {role}: grant it with "
                f"GRANT {quote_identifier(role)} TO <login role>, or run Bulkhead as a role with CREATEROLE"
            ) from None
    await _own_schema(conn, schema, role, statements)


async def _refuse_extension_schema(conn: Connection, schema: str) -> None:
    """A schema holding an extension serves every role: handing it to one would break the others."""
    if schema == SHARED_SCHEMA:
        return
    extensions = [row["extname"] for row in await conn.fetch(sql.SCHEMA_EXTENSIONS, schema)]
    if extensions:
        raise not_provisioned(
            f"schema {schema} holds the extension(s) {', '.join(extensions)}, which every role uses; Bulkhead "
            "will not make it a tenant's schema: map the key to a schema of its own"
        )


async def _ensure_role(conn: Connection, role: str, statements: RoleSQL) -> None:
    state = await conn.fetchrow(sql.ROLE_STATE, role)
    if state is None:
        try:
            async with conn.transaction():
                await conn.execute(statements.create_role)
            logger.info("created tenant role %s", role)
            return
        except asyncpg.InsufficientPrivilegeError:
            raise not_provisioned(
                f"the database login may not create role {role}: give it CREATEROLE, or create the role "
                "as the README's section on running on your own PostgreSQL shows"
            ) from None
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            # Roles are cluster-wide: a Bulkhead on another database of this cluster won the race.
            state = await conn.fetchrow(sql.ROLE_STATE, role)
    if state is None or state["privileged"] or state["member_of_roles"]:
        raise not_provisioned(
            f"role {role} exists but is not a plain NOLOGIN role (it can log in, has special attributes "
            "or is a member of other roles); Bulkhead will not run a tenant's transactions under it"
        )


async def _own_schema(conn: Connection, schema: str, role: str, statements: RoleSQL) -> None:
    quoted_schema, quoted_role = quote_identifier(schema), quote_identifier(role)
    owner = await conn.fetchval(sql.SCHEMA_OWNER, schema)
    if schema == SHARED_SCHEMA:
        # has_schema_privilege is true if any one listed privilege is held, so ask for each.
        for privilege in ("USAGE", "CREATE"):
            if not await conn.fetchval(sql.SCHEMA_PRIVILEGE, role, schema, privilege):
                await _as_login(
                    conn,
                    statements.share_schema_with_role,
                    f"the database login cannot let role {role} use schema public: run GRANT USAGE, CREATE ON "
                    f"SCHEMA public TO {quoted_role} as the database owner, or make a schema of Bulkhead's own "
                    "the default schema",
                )
                break
    elif owner is None:
        await _as_login(
            conn,
            statements.create_schema,
            f"the database login may not create schema {schema}: grant it CREATE on the database, or run "
            f"CREATE SCHEMA {quoted_schema} AUTHORIZATION {quoted_role}",
        )
    elif owner != role:
        await _as_login(
            conn,
            statements.adopt_schema,
            f"schema {schema} exists and the database login cannot hand it to role {role}: run "
            f"ALTER SCHEMA {quoted_schema} OWNER TO {quoted_role} as its owner",
        )
    if schema != SHARED_SCHEMA:
        await _as_login(
            conn,
            statements.revoke_schema_from_public,
            f"the database login cannot take PUBLIC's rights on schema {schema} away: run "
            f"REVOKE ALL ON SCHEMA {quoted_schema} FROM PUBLIC as its owner",
        )
    if await conn.fetch(sql.TABLES_NOT_OWNED, schema, role, list(sql.TENANT_TABLES)):
        await _as_login(
            conn,
            statements.adopt_tables,
            f"Bulkhead's tables in schema {schema} belong to another role and the database login cannot "
            f"hand them to role {role}; run ALTER TABLE ... OWNER TO {quoted_role} for each as their owner",
        )
        logger.info("schema %s: handed Bulkhead's tables to role %s", schema, role)


async def _as_login(conn: Connection, statement: str, refusal: str) -> None:
    """Run a statement that needs the login's privileges; `refusal` tells the operator what to do."""
    try:
        async with conn.transaction():
            await conn.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        raise not_provisioned(refusal) from None


async def share_extension_schema(conn: Connection, vector_schema: str) -> bool:
    """Make the extension's schema usable (never writable) by tenant roles; False if it cannot be."""
    if await conn.fetchval(sql.SCHEMA_PRIVILEGE, "public", vector_schema, "USAGE"):
        return True
    try:
        async with conn.transaction():
            await conn.execute(sql.share_extension_schema(vector_schema))
    except asyncpg.InsufficientPrivilegeError:
        logger.warning(
            "pgvector is installed in schema %s, which tenant roles may not use; run "
            "GRANT USAGE ON SCHEMA %s TO PUBLIC to enable vector search",
            vector_schema,
            quote_identifier(vector_schema),
        )
        return False
    return True


async def withhold_temporary_tables(conn: Connection) -> None:
    """Take TEMPORARY on the database from PUBLIC, so no tenant role can create temporary objects."""
    if not await conn.fetchval(sql.PUBLIC_MAY_CREATE_TEMPORARY):
        return
    database = await conn.fetchval(sql.CURRENT_DATABASE)
    try:
        async with conn.transaction():
            await conn.execute(sql.revoke_temporary(database))
    except asyncpg.InsufficientPrivilegeError:
        logger.warning(
            "tenant roles may create temporary tables in database %s, which outlive their transaction on "
            "shared connections; run REVOKE TEMPORARY ON DATABASE %s FROM PUBLIC as its owner",
            database,
            quote_identifier(database),
        )
        return
    logger.info("database %s: PUBLIC may no longer create temporary tables", database)
