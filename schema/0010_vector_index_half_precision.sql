-- requires: vector
-- The HNSW index over half-precision copies of the vectors (pgvector's halfvec, 0.7 or later):
-- about half the index's size (1,951 MB to 1,115 MB at 1,000,000 memories of 384 dimensions),
-- and searches and inserts that read half the bytes, the same neighbours found
-- (bench/vector_index.py). The column keeps full precision, and recall's similarities are
-- computed from it.
-- Rebuilding takes a while on a large schema (3 s at 10,000 memories, 203 s at 1,000,000, on 2
-- cores with maintenance_work_mem at 4 GB): run `bulkhead migrate` before serving the new
-- version, or its first call waits for it. The memory for the build is raised as reembed raises
-- it (`raise_maintenance_memory` in store/sql/vectors.py), here in SQL since a migration is fixed.
-- The index's dimension is the column's own, which a schema awaiting `bulkhead reembed` to
-- another embedder may not share with the server's.
-- Placeholders: {schema} the tenant schema, {vector_schema} the extension's schema.
SELECT pg_catalog.set_config(
    'maintenance_work_mem',
    CASE WHEN pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')) < 512 * 1024 * 1024
         THEN '512MB' ELSE pg_catalog.current_setting('maintenance_work_mem') END,
    true);
DROP INDEX IF EXISTS {schema}.memories_embedding_idx;
DO $$
DECLARE
    dimension integer := (
        SELECT a.atttypmod FROM pg_catalog.pg_attribute AS a
        WHERE a.attrelid = '{schema}.memories'::pg_catalog.regclass AND a.attname = 'embedding' AND NOT a.attisdropped
    );
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE INDEX memories_embedding_idx ON {schema}.memories '
        'USING hnsw ((embedding::{vector_schema}.halfvec(%s)) {vector_schema}.halfvec_cosine_ops)',
        dimension);
END
$$;
