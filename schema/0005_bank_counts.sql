-- Per-bank counts of memories and documents and the last retain time, so list_banks reads one
-- row per bank instead of counting every memory. Statement-level triggers keep them in the same
-- transaction as every insert and delete of memories and documents, whichever statement makes
-- it (retain, replace, forget, a cascade from a deleted bank), so they cannot drift from the rows.
-- The row is its own table, not columns of `banks`, so that a lock taken on a bank row never
-- waits on a count being updated, nor the other way round.
-- Placeholders: {schema} is the tenant schema.

LOCK TABLE {schema}.documents, {schema}.memories IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE {schema}.bank_counts (
    bank_id           bigint PRIMARY KEY REFERENCES {schema}.banks (id) ON DELETE CASCADE,
    memories          bigint NOT NULL DEFAULT 0 CHECK (memories >= 0),
    documents         bigint NOT NULL DEFAULT 0 CHECK (documents >= 0),
    last_retained_at  timestamptz
);

INSERT INTO {schema}.bank_counts (bank_id, memories, documents, last_retained_at)
SELECT b.id,
       (SELECT count(*) FROM {schema}.memories AS m WHERE m.bank_id = b.id),
       (SELECT count(*) FROM {schema}.documents AS d WHERE d.bank_id = b.id),
       (SELECT max(m.retained_at) FROM {schema}.memories AS m WHERE m.bank_id = b.id)
FROM {schema}.banks AS b;

CREATE FUNCTION {schema}.count_added_memories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.bank_counts AS c (bank_id, memories, last_retained_at)
    SELECT a.bank_id, count(*), max(a.retained_at) FROM added AS a GROUP BY a.bank_id
    ON CONFLICT (bank_id) DO UPDATE
        SET memories = c.memories + excluded.memories,
            last_retained_at = greatest(c.last_retained_at, excluded.last_retained_at);
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_removed_memories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {schema}.bank_counts AS c SET memories = c.memories - r.n
    FROM (SELECT bank_id, count(*) AS n FROM removed GROUP BY bank_id) AS r
    WHERE c.bank_id = r.bank_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_added_documents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.bank_counts AS c (bank_id, documents)
    SELECT a.bank_id, count(*) FROM added AS a GROUP BY a.bank_id
    ON CONFLICT (bank_id) DO UPDATE SET documents = c.documents + excluded.documents;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_removed_documents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {schema}.bank_counts AS c SET documents = c.documents - r.n
    FROM (SELECT bank_id, count(*) AS n FROM removed GROUP BY bank_id) AS r
    WHERE c.bank_id = r.bank_id;
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
