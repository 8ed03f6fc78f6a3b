-- The order memories were retained in, as a number: recall reads a memory's neighbours (the one
-- retained just before and just after it in its bank) along it, and reembed walks it in batches.
-- Placeholders: {schema} is the tenant schema.

ALTER TABLE {schema}.memories ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;

CREATE UNIQUE INDEX memories_bank_seq_idx ON {schema}.memories (bank_id, seq);
