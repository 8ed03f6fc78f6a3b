"""Server-wide statements: locks, the catalog look-ups provisioning needs, the vector extension.

None of these names a tenant's table, so they are not rendered per schema.
"""

from __future__ import annotations

from mcp_server.store.sql import EXTENSION_SCHEMA, quote_identifier, render

# What every transaction sets for itself, first thing (a pooler in transaction mode hands each
# transaction any server connection, so nothing may be set per connection; `application_name`
# is the exception, a startup parameter that PgBouncer itself carries to each server connection). No statement may
# lean on an unqualified name; JIT only slows short queries; pgvector's ef_search bounds how many
# neighbours one HNSW scan returns, so it must exceed what recall asks for (100 candidates per
# leg at most), and the iterative scan keeps going when bank and tag filters discard what the
# index found first. No statement starts parallel workers: a tool call's statements are short,
# starting workers cost one recall 5 ms, and one tenant's statement should not take more than
# one core from the others. A custom setting may be set before its extension is loaded.
TRANSACTION_SETTINGS = (
    "SET LOCAL search_path = ''; SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0; "
    "SET LOCAL hnsw.ef_search = 100; SET LOCAL hnsw.iterative_scan = relaxed_order"
)

# Recall's search is planned in one of two ways. With a filter, it is planned for its values every
# time: the filter's values pick the index that finds the memories passing it (`eligible` in
# `store.sql.search`). Without one, a plan made once per connection serves every search: planning
# the statement took 1.1-1.5 ms of a 4-6 ms search at 100k. Such a plan does not know the bank,
# and its guess of how few memories pass the bank's conditions made it compare every vector of a
# 10,000-memory bank (19 ms) rather than search the vector index; with sequential scans off, it
# takes the indexes a plan for the values takes (same candidates at 10k, 100k and 1M). PostgreSQL's
# own choice (`auto`) had turned to a generic plan after five executions, seq scans allowed.
CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"
GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off"

# A tenant transaction is opened by one simple-protocol string (these, its settings and its role)
# and ended by one statement: two round trips fewer than BEGIN and the settings apart. A read-only
# one is ended after its caller has its answer (`db.pool.LateCommits`).
BEGIN = "BEGIN"
BEGIN_READ_ONLY = "BEGIN READ ONLY"
BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"

PING = "SELECT 1"
ADVISORY_XACT_LOCK = "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended($1, 0))"

VECTOR_SCHEMA = """
SELECT n.nspname FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector'
"""
VECTOR_VERSION = "SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'vector'"
VECTOR_AVAILABLE = "SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'vector'"
CREATE_EXTENSION_SCHEMA = render("CREATE SCHEMA IF NOT EXISTS {ext}", ext=quote_identifier(EXTENSION_SCHEMA))
CREATE_VECTOR_EXTENSION = render(
    "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA {ext}", ext=quote_identifier(EXTENSION_SCHEMA)
)
# Tenant roles use the extension's types and functions; they may not add to or change them.
SHARE_EXTENSION_SCHEMA = "GRANT USAGE ON SCHEMA {vector_schema} TO PUBLIC"


def share_extension_schema(vector_schema: str) -> str:
    """The grant that lets every tenant role use (never change) the extension's schema."""
    return render(SHARE_EXTENSION_SCHEMA, vector_schema=quote_identifier(vector_schema))


# Temporary tables made under a tenant role outlive its transaction on a pooled connection that
# every tenant shares, so PUBLIC (and with it each tenant role) may not create them.
PUBLIC_MAY_CREATE_TEMPORARY = (
    "SELECT pg_catalog.has_database_privilege('public', pg_catalog.current_database(), 'TEMPORARY')"
)
CURRENT_DATABASE = "SELECT pg_catalog.current_database()"
REVOKE_TEMPORARY = "REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC"


def revoke_temporary(database: str) -> str:
    """The revoke that keeps tenant roles from creating temporary objects in `database`."""
    return render(REVOKE_TEMPORARY, database=quote_identifier(database))


# $1 is a role name ('public' for PUBLIC), $2 a schema name, $3 privileges such as 'USAGE'.
SCHEMA_PRIVILEGE = "SELECT pg_catalog.has_schema_privilege($1, $2, $3)"

# A tenant role must be a bare NOLOGIN role: no attribute that bypasses privileges and no
# membership through which it could inherit another role's rights.
ROLE_STATE = """
SELECT r.rolsuper OR r.rolcanlogin OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication
           OR r.rolbypassrls AS privileged,
       EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members AS m WHERE m.member = r.oid) AS member_of_roles
FROM pg_catalog.pg_roles AS r
WHERE r.rolname = $1
"""
# SET ROLE needs the SET option from PostgreSQL 16 on, plain membership before.
CAN_SET_ROLE = """
SELECT pg_catalog.pg_has_role($1, CASE WHEN pg_catalog.current_setting('server_version_num')::integer >= 160000
                                       THEN 'SET' ELSE 'MEMBER' END)
"""
# Extensions installed in a schema ($1): such a schema is shared and never becomes a tenant's.
SCHEMA_EXTENSIONS = """
SELECT e.extname FROM pg_catalog.pg_extension AS e
JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
WHERE n.nspname = $1 ORDER BY e.extname
"""
SCHEMA_OWNER = """
SELECT pg_catalog.pg_get_userbyid(n.nspowner) FROM pg_catalog.pg_namespace AS n WHERE n.nspname = $1
"""
# Bulkhead's own tables in a schema ($1) that some role other than $2 owns: left by a version
# that predates tenant roles, and handed over to the tenant role.
TABLES_NOT_OWNED = """
SELECT c.relname FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY($3::text[])
  AND c.relowner <> (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = $2)
"""
TENANT_TABLES = ("schema_migrations", "banks", "documents", "memories")

# Every schema that holds Bulkhead's tables, with the bytes its tables take (indexes and TOAST
# included). Sizes need no privilege on the tables, so the login reads every tenant's.
BULKHEAD_SCHEMAS = """
SELECT n.nspname AS schema,
       (SELECT coalesce(sum(pg_catalog.pg_total_relation_size(c.oid)), 0)
        FROM pg_catalog.pg_class AS c WHERE c.relnamespace = n.oid AND c.relkind = 'r')::bigint AS bytes
FROM pg_catalog.pg_namespace AS n
WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class AS c
              WHERE c.relnamespace = n.oid AND c.relname = 'schema_migrations' AND c.relkind = 'r')
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_class AS c
              WHERE c.relnamespace = n.oid AND c.relname = 'memories' AND c.relkind = 'r')
ORDER BY n.nspname
"""
# The extensions whose objects live in schema $1: such a schema is never dropped.
SCHEMA_EXTENSIONS = """
SELECT e.extname FROM pg_catalog.pg_extension AS e
JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
WHERE n.nspname = $1 ORDER BY e.extname
"""
# How big the catalog is: what every tenant schema adds to, whoever owns it.
CATALOG_SIZE = """
SELECT (SELECT count(*) FROM pg_catalog.pg_class)::bigint AS relations,
       (SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)) FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'pg_catalog' AND c.relkind = 'r')::bigint AS bytes
"""
