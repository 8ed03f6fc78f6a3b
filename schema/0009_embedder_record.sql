-- Which embedder made the schema's vectors (`local all-MiniLM-L6-v2 int8`, `openai-compatible
-- text-embedding-3-small`, ...), so that a server configured with another one refuses the schema
-- until `bulkhead reembed` has rewritten them, instead of ranking by vectors that do not compare.
-- At most one row. A schema gets it from the first server with an embedder that checks it (one
-- made before this migration takes that server's embedder then), and from every reembed.
-- Placeholders: {schema} is the tenant schema.

CREATE TABLE {schema}.embedder (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    name         text NOT NULL CHECK (pg_catalog.length(name) BETWEEN 1 AND 200),
    recorded_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
