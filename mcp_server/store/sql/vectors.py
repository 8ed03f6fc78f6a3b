"""A schema's embedding column as a whole: its dimension, and rewriting every vector (reembed)."""

from __future__ import annotations

from mcp_server.store.sql import StatementGroup, Template


class VectorSQL(StatementGroup):
    """Rendered with `embedding_dim` set to the dimension the column should have."""

    # $1 is the memories table as a qualified name, for `to_regclass`.
    embedding_dimension = Template("""
        SELECT a.atttypmod FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = 'embedding' AND NOT a.attisdropped
    """)
    # The embedder that made the vectors (schema/0009_embedder_record.sql). `claim_embedder`
    # records $1 if nothing is recorded yet and returns what is recorded (NULL only when another
    # transaction recorded one after this statement began: read it again).
    recorded_embedder = Template("SELECT name FROM {schema}.embedder")
    claim_embedder = Template("""
        WITH claimed AS (
            INSERT INTO {schema}.embedder (name) VALUES ($1) ON CONFLICT (singleton) DO NOTHING RETURNING name
        )
        SELECT name FROM claimed UNION ALL SELECT name FROM {schema}.embedder LIMIT 1
    """)
    record_embedder = Template("""
        INSERT INTO {schema}.embedder (name) VALUES ($1)
        ON CONFLICT (singleton) DO UPDATE SET name = excluded.name, recorded_at = pg_catalog.now()
    """)
    # Whether any memory has a vector (a schema older than the record holds some).
    any_vector = Template("SELECT EXISTS (SELECT 1 FROM {schema}.memories WHERE embedding IS NOT NULL)")
    # reembed: drop the index while vectors are rewritten, resize the column, refill, reindex.
    drop_vector_index = Template("DROP INDEX IF EXISTS {schema}.memories_embedding_idx")
    resize_vector_column = Template("""
        ALTER TABLE {schema}.memories
        ALTER COLUMN embedding TYPE {vector_schema}.vector({embedding_dim}) USING NULL
    """)
    # Building an HNSW index is much faster when the graph fits in memory (about the index's
    # size: 120 MB at 100k memories of 384 dimensions in half precision, past the 64 MB
    # default). Never lowers what the operator set (a million memories need about 1.1 GB).
    raise_maintenance_memory = Template("""
        SELECT pg_catalog.set_config(
            'maintenance_work_mem',
            CASE WHEN pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')) < 512 * 1024 * 1024
                 THEN '512MB' ELSE pg_catalog.current_setting('maintenance_work_mem') END,
            true)
    """)
    # Over half-precision copies of the memories marked for it, as schema/0011 made it; recall's
    # search (`store.sql.search`) spells the same expression and condition.
    create_vector_index = Template("""
        CREATE INDEX IF NOT EXISTS memories_embedding_idx ON {schema}.memories
        USING hnsw ((embedding::{vector_schema}.halfvec({embedding_dim})) {vector_schema}.halfvec_cosine_ops)
        WHERE in_vector_index
    """)
    count_memories = Template("SELECT count(*) FROM {schema}.memories")
    memories_after = Template("SELECT seq, text FROM {schema}.memories WHERE seq > $1 ORDER BY seq LIMIT $2")
    set_embeddings = Template("""
        UPDATE {schema}.memories AS m SET embedding = v.embedding
        FROM unnest($1::bigint[], $2::{vector_schema}.vector[]) AS v (seq, embedding)
        WHERE m.seq = v.seq
    """)
