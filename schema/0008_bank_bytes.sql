-- The bytes of memory text each bank holds, kept beside its counts (schema/0006_bank_counts.sql)
-- by the same triggers, so a retain checks the tenant's storage quota by reading a few rows per
-- bank instead of summing the length of every memory (38 ms at 100,000 memories, on every retain).
-- Placeholders: {schema} is the tenant schema.

LOCK TABLE {schema}.documents, {schema}.memories IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE {schema}.bank_counts ADD COLUMN bytes bigint NOT NULL DEFAULT 0;

INSERT INTO {schema}.bank_counts AS c (bank_id, slot, bytes)
SELECT m.bank_id, 0, sum(pg_catalog.octet_length(m.text)) FROM {schema}.memories AS m GROUP BY m.bank_id
ON CONFLICT (bank_id, slot) DO UPDATE SET bytes = excluded.bytes;

CREATE OR REPLACE FUNCTION {schema}.count_added_memories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.bank_counts AS c (bank_id, slot, memories, bytes, last_retained_at)
    SELECT a.bank_id, pg_catalog.pg_backend_pid() % 16, count(*), sum(pg_catalog.octet_length(a.text)),
           max(a.retained_at)
    FROM added AS a GROUP BY a.bank_id
    ON CONFLICT (bank_id, slot) DO UPDATE
        SET memories = c.memories + excluded.memories,
            bytes = c.bytes + excluded.bytes,
            last_retained_at = greatest(c.last_retained_at, excluded.last_retained_at);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION {schema}.count_removed_memories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.bank_counts AS c (bank_id, slot, memories, bytes)
    SELECT r.bank_id, pg_catalog.pg_backend_pid() % 16, -count(*), -sum(pg_catalog.octet_length(r.text))
    FROM removed AS r
    WHERE EXISTS (SELECT 1 FROM {schema}.banks AS b WHERE b.id = r.bank_id)
    GROUP BY r.bank_id
    ON CONFLICT (bank_id, slot) DO UPDATE
        SET memories = c.memories + excluded.memories,
            bytes = c.bytes + excluded.bytes;
    RETURN NULL;
END
$$;
