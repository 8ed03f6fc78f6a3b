-- Per-bank counts of memories and documents and the last retain time, so list_banks reads a few
-- rows per bank instead of counting every memory. Statement-level triggers keep them in the same
-- transaction as every insert and delete of memories and documents, whichever statement makes
-- it (retain, replace, forget, a cascade from a deleted bank), so they cannot drift from the rows.
-- Each bank's counts are split over up to 16 rows (slots), one per database connection (its
-- backend pid modulo 16), summed when read: a transaction holds its slot's row lock until it
-- commits, and with a single row per bank every concurrent retain in the bank would wait for the
-- one before it to commit (a third of the throughput with 8 in flight). A transaction uses one
-- slot only, so two of them never wait on each other's counts in opposite orders. The rows are a
-- table of their own, not columns of `banks`, so a lock on a bank row never waits on a count.
-- Placeholders: {schema} is the tenant schema.

LOCK TABLE {schema}.documents, {schema}.memories IN SHARE ROW EXCLUSIVE MODE;

-- A slot's counts are changes made through it: one may be negative, their sum never is.
CREATE TABLE {schema}.bank_counts (
    bank_id           bigint NOT NULL REFERENCES {schema}.banks (id) ON DELETE CASCADE,
    slot              smallint NOT NULL,
    memories          bigint NOT NULL DEFAULT 0,
    documents         bigint NOT NULL DEFAULT 0,
    last_retained_at  timestamptz,
    PRIMARY KEY (bank_id, slot)
);

INSERT INTO {schema}.bank_counts (bank_id, slot, memories, documents, last_retained_at)
SELECT b.id, 0,
       (SELECT count(*) FROM {schema}.memories AS m WHERE m.bank_id = b.id),
       (SELECT count(*) FROM {schema}.documents AS d WHERE d.bank_id = b.id),
       (SELECT max(m.retained_at) FROM {schema}.memories AS m WHERE m.bank_id = b.id)
FROM {schema}.banks AS b;

CREATE FUNCTION {schema}.count_added_memories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.bank_counts AS c (bank_id, slot, memories, last_retained_at)
    SELECT a.bank_id, pg_catalog.pg_backend_pid() % 16, count(*), max(a.retained_at) FROM added AS a GROUP BY a.bank_id
    ON CONFLICT (bank_id, slot) DO UPDATE
        SET memories = c.memories + excluded.memories,
            last_retained_at = greatest(c.last_retained_at, excluded.last_retained_at);
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_removed_memories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.bank_counts AS c (bank_id, slot, memories)
    SELECT r.bank_id, pg_catalog.pg_backend_pid() % 16, -count(*) FROM removed AS r
    WHERE EXISTS (SELECT 1 FROM {schema}.banks AS b WHERE b.id = r.bank_id)
    GROUP BY r.bank_id
    ON CONFLICT (bank_id, slot) DO UPDATE SET memories = c.memories + excluded.memories;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_added_documents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.bank_counts AS c (bank_id, slot, documents)
    SELECT a.bank_id, pg_catalog.pg_backend_pid() % 16, count(*) FROM added AS a GROUP BY a.bank_id
    ON CONFLICT (bank_id, slot) DO UPDATE SET documents = c.documents + excluded.documents;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_removed_documents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.bank_counts AS c (bank_id, slot, documents)
    SELECT r.bank_id, pg_catalog.pg_backend_pid() % 16, -count(*) FROM removed AS r
    WHERE EXISTS (SELECT 1 FROM {schema}.banks AS b WHERE b.id = r.bank_id)
    GROUP BY r.bank_id
    ON CONFLICT (bank_id, slot) DO UPDATE SET documents = c.documents + excluded.documents;
    RETURN NULL;
END
$$;

-- A memory or a document never moves to another bank (no statement updates bank_id), so inserts
-- and deletes are all that change the counts.
CREATE TRIGGER memories_counted_on_insert AFTER INSERT ON {schema}.memories
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_added_memories();
CREATE TRIGGER memories_counted_on_delete AFTER DELETE ON {schema}.memories
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_removed_memories();
CREATE TRIGGER documents_counted_on_insert AFTER INSERT ON {schema}.documents
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_added_documents();
CREATE TRIGGER documents_counted_on_delete AFTER DELETE ON {schema}.documents
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_removed_documents();
