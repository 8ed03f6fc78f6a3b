-- Banks, documents and memories of one tenant schema.
-- Placeholders: {schema} is the tenant schema, validated and quoted by the store.

CREATE TABLE {schema}.banks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.documents (
    bank_id      bigint NOT NULL REFERENCES {schema}.banks (id) ON DELETE CASCADE,
    id           text NOT NULL,
    retained_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bank_id, id)
);

CREATE TABLE {schema}.memories (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    bank_id      bigint NOT NULL,
    document_id  text NOT NULL,
    chunk_index  integer NOT NULL,
    text         text NOT NULL,
    context      text,
    tags         text[] NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    occurred_at  timestamptz,
    retained_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    search       tsvector GENERATED ALWAYS AS (
                     setweight(to_tsvector('english'::regconfig, text), 'A')
                     || setweight(to_tsvector('english'::regconfig, coalesce(context, '')), 'B')
                 ) STORED,
    FOREIGN KEY (bank_id, document_id) REFERENCES {schema}.documents (bank_id, id) ON DELETE CASCADE
);

CREATE INDEX memories_search_idx ON {schema}.memories USING gin (search);
CREATE INDEX memories_tags_idx ON {schema}.memories USING gin (tags);
CREATE INDEX memories_bank_retained_idx ON {schema}.memories (bank_id, retained_at DESC);
CREATE INDEX memories_bank_document_idx ON {schema}.memories (bank_id, document_id, chunk_index);
