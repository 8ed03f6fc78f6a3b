"""Each schema's record of the migrations applied to it."""

from __future__ import annotations

from mcp_server.store.sql import StatementGroup, Template


class MigrationSQL(StatementGroup):
    """The `schema_migrations` table: made first, read and written around each migration."""

    create_migrations_table = Template("""
        CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
            version     integer PRIMARY KEY,
            name        text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        )
    """)
    applied_versions = Template("SELECT version FROM {schema}.schema_migrations")
    record_version = Template("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)")
