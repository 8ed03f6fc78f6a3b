"""Every SQL statement Bulkhead runs, as templates rendered once per schema.

`{schema}` is replaced by the tenant schema's quoted identifier (validated before it gets here) and
`{role}` by that of the tenant role that owns it; every value is a `$n` parameter. Nothing else in
the package holds SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from mcp_server.tenancy import tenant_role_name, validate_schema_name

EXTENSION_SCHEMA = "bulkhead_ext"

# -- server-wide ------------------------------------------------------------------------------

ADVISORY_XACT_LOCK = "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended($1, 0))"
VECTOR_SCHEMA = """
SELECT n.nspname FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector'
"""
VECTOR_AVAILABLE = "SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'vector'"
CREATE_EXTENSION_SCHEMA = 'CREATE SCHEMA IF NOT EXISTS "bulkhead_ext"'
CREATE_VECTOR_EXTENSION = 'CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA "bulkhead_ext"'
# $1 is a role name ('public' for PUBLIC), $2 a schema name, $3 privileges such as 'USAGE'.
SCHEMA_PRIVILEGE = "SELECT pg_catalog.has_schema_privilege($1, $2, $3)"
# Tenant roles use the extension's types and functions; they may not add to or change them.
SHARE_EXTENSION_SCHEMA = "GRANT USAGE ON SCHEMA {vector_schema} TO PUBLIC"

# -- per schema: tenant roles -----------------------------------------------------------------

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

# -- per schema: provisioning -----------------------------------------------------------------

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
SCHEMA_EXISTS = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1"
MIGRATIONS_TABLE_EXISTS = """
SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'schema_migrations'
"""


def quote_identifier(name: str) -> str:
    """Double-quote a PostgreSQL identifier, doubling any quote inside it."""
    return '"' + name.replace('"', '""') + '"'


def render(template: str, **identifiers: str | int) -> str:
    """Fill `{name}` placeholders with identifiers already quoted (or integers) by the caller.

    Only the names given are replaced, so literal braces elsewhere (`'{}'`) are left alone.
    """
    names = "|".join(re.escape(name) for name in identifiers)
    return re.sub(r"\{(" + names + r")\}", lambda m: str(identifiers[m.group(1)]), template)


# -- recall's candidates ------------------------------------------------------------------------
# Parameters: $1 bank id, $2 the ranked `to_tsquery` expression, $3 the query vector, $4 tags
# (all required), $5 since, $6 until, $7 candidates per leg, $8 the query's words (NULL: use
# them all to pick candidates), $9 the schema's common words (see `common_words`).

_FILTERS = """($4::text[] IS NULL OR m.tags @> $4::text[])
          AND ($5::timestamptz IS NULL OR coalesce(m.occurred_at, m.retained_at) >= $5)
          AND ($6::timestamptz IS NULL OR coalesce(m.occurred_at, m.retained_at) <= $6)"""

# Ranking every memory that holds a common word is what makes full-text search slow in a large
# bank, and such a word says little on its own. So when the query has common words, candidates
# are the memories holding any of its rarer words or all of its words; all are still ranked by
# the whole query. Small schemas have no common words, and there nothing changes.
_LEXICAL = (
    """
        words AS (
            SELECT w.lexeme, w.lexeme = ANY($9::text[]) AS common
            FROM unnest(pg_catalog.tsvector_to_array(pg_catalog.to_tsvector('english'::regconfig, $8))) AS w (lexeme)
        ),
        q AS (
            SELECT pg_catalog.to_tsquery('english'::regconfig, $2) AS ranked,
                   CASE WHEN NOT EXISTS (SELECT 1 FROM words WHERE common)
                        THEN pg_catalog.to_tsquery('english'::regconfig, $2)
                        ELSE pg_catalog.concat_ws(
                            ' | ',
                            (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(lexeme), ' | ')
                             FROM words WHERE NOT common),
                            (SELECT '(' || pg_catalog.string_agg(pg_catalog.quote_literal(lexeme), ' & ') || ')'
                             FROM words)
                        )::tsquery
                   END AS matched
        ),
        lexical AS (
            SELECT m.seq FROM {schema}.memories AS m, q
            WHERE m.bank_id = $1 AND m.search @@ q.matched AND """
    + _FILTERS
    + """
            ORDER BY pg_catalog.ts_rank(m.search, q.ranked) DESC, m.seq DESC
            LIMIT $7
        ),"""
)

# Each seed (a candidate of either leg) with its neighbours: the memory retained just after it
# and the two just before it (the second only as the context of the first). Two index scans per
# seed; the store works out which row precedes which. `lag` over these rows is each pool row's
# true predecessor, since that predecessor is always among them.
_AROUND = """
        seeds AS (SELECT seq FROM lexical UNION SELECT seq FROM semantic),
        around AS (
            SELECT DISTINCT ON (w.seq) w.* FROM seeds AS s
            CROSS JOIN LATERAL (
                (SELECT m.* FROM {schema}.memories AS m
                 WHERE m.bank_id = $1 AND m.seq <= s.seq ORDER BY m.seq DESC LIMIT 3)
                UNION ALL
                (SELECT m.* FROM {schema}.memories AS m
                 WHERE m.bank_id = $1 AND m.seq > s.seq ORDER BY m.seq LIMIT 1)
            ) AS w
            ORDER BY w.seq
        )"""

_COLUMNS = (
    """m.id, m.seq, m.text, m.context, m.tags, m.metadata, m.occurred_at, m.retained_at, m.document_id,
               m.seq IN (SELECT seq FROM seeds) AS seed,
               ("""
    + _FILTERS
    + """) AS eligible,
               CASE WHEN m.search @@ q.ranked THEN pg_catalog.ts_rank(m.search, q.ranked) END AS lexical"""
)

_SEARCH_HYBRID = (
    "WITH"
    + _LEXICAL
    + """
        semantic AS (
            SELECT m.seq FROM {schema}.memories AS m
            WHERE $3::{vector_schema}.vector IS NOT NULL AND m.bank_id = $1 AND m.embedding IS NOT NULL AND """
    + _FILTERS
    + """
            ORDER BY m.embedding OPERATOR({vector_schema}.<=>) $3::{vector_schema}.vector
            LIMIT $7
        ),"""
    + _AROUND
    + """
        SELECT """
    + _COLUMNS
    + """,
               1 - (m.embedding OPERATOR({vector_schema}.<=>) $3::{vector_schema}.vector) AS cosine,
               1 - (m.embedding OPERATOR({vector_schema}.<=>) lag(m.embedding) OVER (ORDER BY m.seq)) AS prev_similarity
        FROM around AS m, q
    """
)

# The same without vectors (no pgvector, or the `none` embedder). $3 is not used; it is named
# once so that both statements take the same parameters.
_SEARCH_LEXICAL = (
    "WITH"
    + _LEXICAL
    + """
        semantic AS (SELECT NULL::bigint AS seq WHERE $3::text IS NOT NULL AND false),"""
    + _AROUND
    + """
        SELECT """
    + _COLUMNS
    + """, NULL::float8 AS cosine, NULL::float8 AS prev_similarity
        FROM around AS m, q
    """
)


@dataclass(frozen=True)
class SchemaStatements:
    """The statements of one tenant schema, rendered once. Field names say what each does."""

    create_role: str = "CREATE ROLE {role} NOLOGIN NOINHERIT"
    grant_role_to_login: str = "GRANT {role} TO CURRENT_USER"
    create_schema: str = "CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}"
    adopt_schema: str = "ALTER SCHEMA {schema} OWNER TO {role}"
    revoke_schema_from_public: str = "REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"
    share_schema_with_role: str = "GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}"
    # TENANT_TABLES, each handed to the tenant role (one simple-protocol string, run without arguments).
    adopt_tables: str = """
        ALTER TABLE IF EXISTS {schema}.schema_migrations OWNER TO {role};
        ALTER TABLE IF EXISTS {schema}.banks OWNER TO {role};
        ALTER TABLE IF EXISTS {schema}.documents OWNER TO {role};
        ALTER TABLE IF EXISTS {schema}.memories OWNER TO {role};
    """
    set_role: str = "SET LOCAL ROLE {role}"
    create_migrations_table: str = CREATE_MIGRATIONS_TABLE
    applied_versions: str = "SELECT version FROM {schema}.schema_migrations"
    record_version: str = "INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)"

    bank_id: str = "SELECT id FROM {schema}.banks WHERE name = $1"
    ensure_bank: str = """
        WITH inserted AS (
            INSERT INTO {schema}.banks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id
        )
        SELECT id FROM inserted UNION ALL SELECT id FROM {schema}.banks WHERE name = $1 LIMIT 1
    """
    upsert_document: str = """
        INSERT INTO {schema}.documents (bank_id, id) VALUES ($1, $2)
        ON CONFLICT (bank_id, id) DO UPDATE SET retained_at = now()
    """
    delete_document_memories: str = "DELETE FROM {schema}.memories WHERE bank_id = $1 AND document_id = $2"
    insert_memories: str = """
        INSERT INTO {schema}.memories
            (id, bank_id, document_id, chunk_index, text, context, tags, metadata, occurred_at)
        SELECT chunk.id, $1, $2, chunk.ord - 1, chunk.text, $5, $6, $7, $8
        FROM unnest($3::uuid[], $4::text[]) WITH ORDINALITY AS chunk (id, text, ord)
    """
    insert_memories_embedded: str = """
        INSERT INTO {schema}.memories
            (id, bank_id, document_id, chunk_index, text, context, tags, metadata, occurred_at, embedding)
        SELECT chunk.id, $1, $2, chunk.ord - 1, chunk.text, $5, $6, $7, $8, chunk.embedding
        FROM unnest($3::uuid[], $4::text[], $9::{vector_schema}.vector[]) WITH ORDINALITY
            AS chunk (id, text, embedding, ord)
    """
    # Recall's candidates in one round trip: the best full-text matches, the nearest vectors, and
    # their neighbours, each with its raw signals. Fusion happens in `memory.ranking`.
    search_hybrid: str = _SEARCH_HYBRID
    search_lexical: str = _SEARCH_LEXICAL
    # The lexemes of the schema's memories found in more than $1 rows, by the planner's statistics
    # (gathered by ANALYZE, so empty until the table has been analyzed).
    common_words: str = """
        SELECT e.elem FROM pg_catalog.pg_stats AS s
        JOIN pg_catalog.pg_namespace AS n ON n.nspname = s.schemaname
        JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = s.tablename
        CROSS JOIN LATERAL unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS e (elem, freq)
        WHERE s.schemaname = $1 AND s.tablename = 'memories' AND s.attname = 'search'
          AND e.elem IS NOT NULL AND e.freq * greatest(c.reltuples, 0) > $2
    """
    embedding_dimension: str = """
        SELECT a.atttypmod FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = 'embedding' AND NOT a.attisdropped
    """
    # reembed: drop the index while vectors are rewritten, resize the column, refill, reindex.
    drop_vector_index: str = "DROP INDEX IF EXISTS {schema}.memories_embedding_idx"
    resize_vector_column: str = """
        ALTER TABLE {schema}.memories
        ALTER COLUMN embedding TYPE {vector_schema}.vector({embedding_dim}) USING NULL
    """
    # Building an HNSW index is much faster when the graph fits in memory (150 MB at 100k
    # memories of 384 dimensions, past the 64 MB default).
    raise_maintenance_memory: str = "SET LOCAL maintenance_work_mem = '512MB'"
    create_vector_index: str = """
        CREATE INDEX IF NOT EXISTS memories_embedding_idx ON {schema}.memories
        USING hnsw (embedding {vector_schema}.vector_cosine_ops)
    """
    count_memories: str = "SELECT count(*) FROM {schema}.memories"
    memories_after: str = """
        SELECT seq, text FROM {schema}.memories WHERE seq > $1 ORDER BY seq LIMIT $2
    """
    set_embeddings: str = """
        UPDATE {schema}.memories AS m SET embedding = v.embedding
        FROM unnest($1::bigint[], $2::{vector_schema}.vector[]) AS v (seq, embedding)
        WHERE m.seq = v.seq
    """
    delete_memories: str = """
        DELETE FROM {schema}.memories WHERE bank_id = $1 AND id = ANY($2::uuid[])
        RETURNING id, document_id
    """
    delete_empty_documents: str = """
        DELETE FROM {schema}.documents AS d
        WHERE d.bank_id = $1 AND d.id = ANY($2::text[])
          AND NOT EXISTS (
              SELECT 1 FROM {schema}.memories AS m WHERE m.bank_id = d.bank_id AND m.document_id = d.id
          )
    """
    delete_document: str = "DELETE FROM {schema}.documents WHERE bank_id = $1 AND id = $2 RETURNING id"
    list_banks: str = """
        SELECT b.name,
               count(m.id) AS memories,
               count(DISTINCT m.document_id) AS documents,
               max(m.retained_at) AS last_retained_at
        FROM {schema}.banks AS b
        LEFT JOIN {schema}.memories AS m ON m.bank_id = b.id
        GROUP BY b.id, b.name
        ORDER BY b.name
    """

    @classmethod
    def for_schema(
        cls, schema: str, *, vector_schema: str = EXTENSION_SCHEMA, embedding_dim: int = 0
    ) -> SchemaStatements:
        """Render every statement for `schema`, which must be a valid schema name, and its role.

        `vector_schema` is where pgvector lives; `embedding_dim` only matters to reembed.
        """
        identifiers: dict[str, str | int] = {
            "schema": quote_identifier(validate_schema_name(schema)),
            "role": quote_identifier(tenant_role_name(schema)),
            "vector_schema": quote_identifier(vector_schema),
            "embedding_dim": int(embedding_dim),
        }
        return cls(**{f.name: render(getattr(cls, f.name), **identifiers) for f in fields(cls)})
