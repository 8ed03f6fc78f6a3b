"""Banks, documents and memories: what retain, forget and list_banks read and write."""

from __future__ import annotations

from mcp_server.store.sql import StatementGroup, Template


class MemorySQL(StatementGroup):
    """The statements of one schema's banks, documents and memories (search is in `search`)."""

    bank_id = Template("SELECT id FROM {schema}.banks WHERE name = $1")
    ensure_bank = Template("""
        WITH inserted AS (
            INSERT INTO {schema}.banks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id
        )
        SELECT id FROM inserted UNION ALL SELECT id FROM {schema}.banks WHERE name = $1 LIMIT 1
    """)
    upsert_document = Template("""
        INSERT INTO {schema}.documents (bank_id, id) VALUES ($1, $2)
        ON CONFLICT (bank_id, id) DO UPDATE SET retained_at = now()
    """)
    # Storage limits: retains of one schema that check them run one at a time, so two at the
    # limit cannot both see room; forgets never take this lock, they only free room.
    quota_lock = Template("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended($1, 0))")
    usage = Template("""
        SELECT count(*) AS memories, coalesce(sum(octet_length(text)), 0) AS bytes FROM {schema}.memories
    """)
    # Every write locks a document's row before touching its memories, documents in id order, so
    # a replace and a forget of the same document queue up instead of deadlocking.
    documents_of_memories = Template("""
        SELECT DISTINCT document_id FROM {schema}.memories WHERE bank_id = $1 AND id = ANY($2::uuid[])
        ORDER BY document_id
    """)
    lock_documents = Template("""
        SELECT id FROM {schema}.documents WHERE bank_id = $1 AND id = ANY($2::text[]) ORDER BY id FOR UPDATE
    """)
    delete_document_memories = Template("DELETE FROM {schema}.memories WHERE bank_id = $1 AND document_id = $2")
    insert_memories = Template("""
        INSERT INTO {schema}.memories
            (id, bank_id, document_id, chunk_index, text, context, tags, metadata, occurred_at)
        SELECT chunk.id, $1, $2, chunk.ord - 1, chunk.text, $5, $6, $7, $8
        FROM unnest($3::uuid[], $4::text[]) WITH ORDINALITY AS chunk (id, text, ord)
    """)
    insert_memories_embedded = Template("""
        INSERT INTO {schema}.memories
            (id, bank_id, document_id, chunk_index, text, context, tags, metadata, occurred_at, embedding)
        SELECT chunk.id, $1, $2, chunk.ord - 1, chunk.text, $5, $6, $7, $8, chunk.embedding
        FROM unnest($3::uuid[], $4::text[], $9::{vector_schema}.vector[]) WITH ORDINALITY
            AS chunk (id, text, embedding, ord)
    """)
    delete_memories = Template("""
        DELETE FROM {schema}.memories WHERE bank_id = $1 AND id = ANY($2::uuid[])
        RETURNING id, document_id
    """)
    delete_empty_documents = Template("""
        DELETE FROM {schema}.documents AS d
        WHERE d.bank_id = $1 AND d.id = ANY($2::text[])
          AND NOT EXISTS (
              SELECT 1 FROM {schema}.memories AS m WHERE m.bank_id = d.bank_id AND m.document_id = d.id
          )
    """)
    delete_document = Template("DELETE FROM {schema}.documents WHERE bank_id = $1 AND id = $2 RETURNING id")
    list_banks = Template("""
        SELECT b.name,
               count(m.id) AS memories,
               count(DISTINCT m.document_id) AS documents,
               max(m.retained_at) AS last_retained_at
        FROM {schema}.banks AS b
        LEFT JOIN {schema}.memories AS m ON m.bank_id = b.id
        GROUP BY b.id, b.name
        ORDER BY b.name
    """)
