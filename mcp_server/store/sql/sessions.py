"""The dashboard's sign-in sessions: rows in a schema of Bulkhead's own, not of any tenant.

The schema belongs to the login role; tenant roles have no rights on it. It is created on first
use with `IF NOT EXISTS` (under an advisory lock), so it needs no migration, and every server
process on the database shares it: a session opened through one replica is valid on all.
A row holds the digest of the session id (never the id), the tenant's schema, a digest binding
the session to the key it was opened with, the CSRF secret, and its idle and absolute expiry.
"""

from __future__ import annotations

from mcp_server.store.sql import quote_identifier, render

WEB_SCHEMA = "bulkhead_web"


def _web(template: str) -> str:
    return render(template, web=quote_identifier(WEB_SCHEMA))


CREATE_SCHEMA = _web("CREATE SCHEMA IF NOT EXISTS {web}")
CREATE_TABLE = _web("""
    CREATE TABLE IF NOT EXISTS {web}.sessions (
        id_digest        bytea PRIMARY KEY,
        schema_name      text NOT NULL,
        key_binding      bytea NOT NULL,
        csrf_secret      bytea NOT NULL,
        created_at       timestamptz NOT NULL DEFAULT now(),
        idle_expires_at  timestamptz NOT NULL,
        expires_at       timestamptz NOT NULL
    )
""")
CREATE_EXPIRY_INDEX = _web("CREATE INDEX IF NOT EXISTS sessions_idle_expires_idx ON {web}.sessions (idle_expires_at)")
# Nobody but the login role may read sessions, whatever default privileges say.
REVOKE_FROM_PUBLIC = _web("REVOKE ALL ON SCHEMA {web} FROM PUBLIC")
INSERT = _web("""
    INSERT INTO {web}.sessions (id_digest, schema_name, key_binding, csrf_secret, idle_expires_at, expires_at)
    VALUES ($1, $2, $3, $4, now() + $5::interval, now() + $6::interval)
""")
# A live session, its idle expiry pushed forward (never past its absolute expiry) as it is read.
TOUCH = _web("""
    UPDATE {web}.sessions
    SET idle_expires_at = least(now() + $2::interval, expires_at)
    WHERE id_digest = $1 AND idle_expires_at > now() AND expires_at > now()
    RETURNING schema_name, key_binding, csrf_secret
""")
DELETE = _web("DELETE FROM {web}.sessions WHERE id_digest = $1")
DELETE_EXPIRED = _web("DELETE FROM {web}.sessions WHERE idle_expires_at <= now() OR expires_at <= now()")

STATEMENTS: dict[str, str] = {
    "create_schema": CREATE_SCHEMA,
    "create_table": CREATE_TABLE,
    "create_expiry_index": CREATE_EXPIRY_INDEX,
    "revoke_from_public": REVOKE_FROM_PUBLIC,
    "insert": INSERT,
    "touch": TOUCH,
    "delete": DELETE,
    "delete_expired": DELETE_EXPIRED,
}
"""Every statement of this module, for the test that runs them all under an empty search path."""
