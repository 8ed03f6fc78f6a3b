"""Connections: the asyncpg pool, the embedded PostgreSQL, and the migration files."""
