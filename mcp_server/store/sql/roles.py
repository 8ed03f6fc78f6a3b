"""Tenant roles: creating each schema's NOLOGIN role, handing it the schema, and taking it on."""

from __future__ import annotations

from mcp_server.store.sql import StatementGroup, Template


class RoleSQL(StatementGroup):
    """What makes a schema its tenant role's, and what every tenant transaction begins with."""

    create_role = Template("CREATE ROLE {role} NOLOGIN NOINHERIT")
    grant_role_to_login = Template("GRANT {role} TO CURRENT_USER")
    create_schema = Template("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
    adopt_schema = Template("ALTER SCHEMA {schema} OWNER TO {role}")
    revoke_schema_from_public = Template("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
    share_schema_with_role = Template("GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}")
    # catalog.TENANT_TABLES, each handed to the tenant role (one simple-protocol string, no arguments).
    adopt_tables = Template("""
        ALTER TABLE IF EXISTS {schema}.schema_migrations OWNER TO {role};
        ALTER TABLE IF EXISTS {schema}.banks OWNER TO {role};
        ALTER TABLE IF EXISTS {schema}.documents OWNER TO {role};
        ALTER TABLE IF EXISTS {schema}.memories OWNER TO {role};
    """)
    # Lasts until the transaction ends: PostgreSQL then refuses anything outside the schema.
    set_role = Template("SET LOCAL ROLE {role}")
