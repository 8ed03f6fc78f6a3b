-- requires: vector
-- The vector index holds only the memories of banks large enough to be searched through it.
-- Recall compares every vector of a bank of up to 5,000 memories itself (store/search.py,
-- EXACT_SEARCH_MAX), so a small bank's entries in the index served no search; keeping them cost
-- each retained memory an HNSW insert, more than half of PostgreSQL's work for a retain (about
-- 2.6 of 4.1 ms of CPU, measured with bench/latency.py's retain throughput), and made a large
-- bank's search through the index pass over them.
-- A retain marks its memories `in_vector_index` once its bank holds at least half that many
-- (store/sql/memories.py says how, and how the bank's older memories follow), so a bank grown
-- one retain at a time is wholly in the index by the time its searches use it; recall compares
-- any memory of a large bank still outside it exactly. Every memory already stored stays in the
-- index, as does every imported one (the column's default); reembed leaves each where it was.
-- The index is rebuilt with its new condition, as 0010 rebuilt it (3 s at 10,000 memories, 203 s
-- at 1,000,000, on 2 cores): run `bulkhead migrate` before serving the new version, with the
-- servers of earlier versions stopped (their search, not naming the index's condition, cannot use it).
-- Placeholders: {schema} the tenant schema, {vector_schema} the extension's schema.
SELECT pg_catalog.set_config(
    'maintenance_work_mem',
    CASE WHEN pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')) < 512 * 1024 * 1024
         THEN '512MB' ELSE pg_catalog.current_setting('maintenance_work_mem') END,
    true);
ALTER TABLE {schema}.memories ADD COLUMN in_vector_index boolean NOT NULL DEFAULT true;
-- The memories outside the index, by bank: few, and read by recall in a large bank (usually none).
CREATE INDEX memories_outside_vector_index_idx ON {schema}.memories (bank_id, seq) WHERE NOT in_vector_index;
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
        'USING hnsw ((embedding::{vector_schema}.halfvec(%s)) {vector_schema}.halfvec_cosine_ops) '
        'WHERE in_vector_index',
        dimension);
END
$$;
