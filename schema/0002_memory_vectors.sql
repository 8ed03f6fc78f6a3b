-- requires: vector
-- The embedding column and its HNSW index. Applied once the vector extension exists.
-- Placeholders: {schema} the tenant schema, {vector_schema} the extension's schema,
-- {embedding_dim} the embedding dimension, fixed for this schema from here on.

ALTER TABLE {schema}.memories ADD COLUMN embedding {vector_schema}.vector({embedding_dim});

CREATE INDEX memories_embedding_idx ON {schema}.memories
    USING hnsw (embedding {vector_schema}.vector_cosine_ops);
