"""A tenant schema as a whole: exporting and importing its banks, and dropping it with its role."""

from __future__ import annotations

from mcp_server.store.sql import StatementGroup, Template

MEMORY_COLUMNS = (
    "m.id, m.document_id, m.chunk_index, m.text, m.context, m.tags, m.metadata, m.occurred_at, m.retained_at"
)


class TenantSQL(StatementGroup):
    """Export reads a snapshot bank by bank; import writes one bank per transaction."""

    # $1: one bank's name, or NULL for every bank.
    export_banks = Template("""
        SELECT b.id, b.name, b.created_at,
               (SELECT count(*) FROM {schema}.documents AS d WHERE d.bank_id = b.id) AS documents,
               (SELECT count(*) FROM {schema}.memories AS m WHERE m.bank_id = b.id) AS memories
        FROM {schema}.banks AS b
        WHERE $1::text IS NULL OR b.name = $1::text
        ORDER BY b.name
    """)
    # Server-side cursors (declared in the export's transaction, read a batch per FETCH): what
    # asyncpg's own cursors cannot be behind a transaction pooler, as they prepare named statements.
    declare_documents = Template("""
        DECLARE bulkhead_export_documents NO SCROLL CURSOR FOR
        SELECT d.id, d.retained_at FROM {schema}.documents AS d WHERE d.bank_id = $1 ORDER BY d.id
    """)
    # In retained order, so that an import gives them the same order (and neighbours) again.
    declare_memories = Template(f"""
        DECLARE bulkhead_export_memories NO SCROLL CURSOR FOR
        SELECT {MEMORY_COLUMNS} FROM {{schema}}.memories AS m WHERE m.bank_id = $1 ORDER BY m.seq
    """)
    # The vector as real[], which JSON carries as a list of numbers.
    # A cursor of its own: asyncpg caches what FETCH returns by the statement's text.
    declare_memories_embedded = Template(f"""
        DECLARE bulkhead_export_embedded NO SCROLL CURSOR FOR
        SELECT {MEMORY_COLUMNS}, m.embedding::real[] AS embedding FROM {{schema}}.memories AS m
        WHERE m.bank_id = $1 ORDER BY m.seq
    """)
    fetch_documents = Template("FETCH FORWARD 500 FROM bulkhead_export_documents")
    fetch_memories = Template("FETCH FORWARD 500 FROM bulkhead_export_memories")
    fetch_memories_embedded = Template("FETCH FORWARD 500 FROM bulkhead_export_embedded")
    close_documents = Template("CLOSE bulkhead_export_documents")
    close_memories = Template("CLOSE bulkhead_export_memories")
    close_memories_embedded = Template("CLOSE bulkhead_export_embedded")
    bank_memory_count = Template("""
        SELECT count(m.id) FROM {schema}.banks AS b JOIN {schema}.memories AS m ON m.bank_id = b.id
        WHERE b.name = $1
    """)
    # Documents and memories go with their bank (ON DELETE CASCADE).
    delete_bank = Template("DELETE FROM {schema}.banks WHERE name = $1")
    create_bank = Template("INSERT INTO {schema}.banks (name, created_at) VALUES ($1, $2) RETURNING id")
    # $2 is a JSON array of {"id", "retained_at"}.
    import_documents = Template("""
        INSERT INTO {schema}.documents (bank_id, id, retained_at)
        SELECT $1, d.id, d.retained_at FROM jsonb_to_recordset($2::jsonb) AS d (id text, retained_at timestamptz)
    """)
    # $2 is a JSON array of memories; their order becomes their `seq` order.
    import_memories = Template("""
        INSERT INTO {schema}.memories
            (id, bank_id, document_id, chunk_index, text, context, tags, metadata, occurred_at, retained_at)
        SELECT r.id, $1, r.document_id, r.chunk_index, r.text, r.context, r.tags, r.metadata, r.occurred_at,
               r.retained_at
        FROM ROWS FROM (pg_catalog.jsonb_to_recordset($2::jsonb) AS (
                 id uuid, document_id text, chunk_index integer, text text, context text, tags text[],
                 metadata jsonb, occurred_at timestamptz, retained_at timestamptz
             )) WITH ORDINALITY AS r (id, document_id, chunk_index, text, context, tags, metadata, occurred_at,
                                      retained_at, ord)
        ORDER BY r.ord
    """)
    import_memories_embedded = Template("""
        INSERT INTO {schema}.memories
            (id, bank_id, document_id, chunk_index, text, context, tags, metadata, occurred_at, retained_at,
             embedding)
        SELECT r.id, $1, r.document_id, r.chunk_index, r.text, r.context, r.tags, r.metadata, r.occurred_at,
               r.retained_at, r.embedding::{vector_schema}.vector
        FROM ROWS FROM (pg_catalog.jsonb_to_recordset($2::jsonb) AS (
                 id uuid, document_id text, chunk_index integer, text text, context text, tags text[],
                 metadata jsonb, occurred_at timestamptz, retained_at timestamptz, embedding real[]
             )) WITH ORDINALITY AS r (id, document_id, chunk_index, text, context, tags, metadata, occurred_at,
                                      retained_at, embedding, ord)
        ORDER BY r.ord
    """)
    # Fresh statistics, so that recall's common-word pruning reads the imported memories.
    analyze_memories = Template("ANALYZE {schema}.memories")
    drop_schema = Template("DROP SCHEMA {schema} CASCADE")
    reset_role = Template("RESET ROLE")
    drop_role = Template("DROP ROLE {role}")
