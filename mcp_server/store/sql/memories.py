"""Banks, documents and memories: what retain, forget and list_banks read and write."""

from __future__ import annotations

from mcp_server.store.sql import StatementGroup, Template

# The columns a `StoredMemory` is made of, in its fields' order: every statement that reads
# memories for one selects these first (`store.search.stored_memory` reads them by position).
MEMORY_COLUMNS = "m.id, m.seq, m.text, m.context, m.tags, m.metadata, m.occurred_at, m.retained_at, m.document_id"


# The document of bank :bank whose chunks are exactly $3 with the fields $4-$7 (with $2, only
# that document), if one is; the first retained when several are.
IDENTICAL_DOCUMENT = """
        SELECT head.document_id, whole.ids
        FROM {schema}.memories AS head
        CROSS JOIN LATERAL (
            SELECT array_agg(m.id ORDER BY m.chunk_index) AS ids, min(m.seq) AS first_seq
            FROM {schema}.memories AS m
            WHERE m.bank_id = :bank AND m.document_id = head.document_id
            HAVING array_agg(m.text ORDER BY m.chunk_index) = $3::text[]
               AND bool_and(m.context IS NOT DISTINCT FROM $4::text)
               AND bool_and(m.tags = $5::text[])
               AND bool_and(m.metadata = $6::jsonb)
               AND bool_and(m.occurred_at IS NOT DISTINCT FROM $7::timestamptz)
        ) AS whole
        WHERE head.bank_id = :bank AND head.chunk_index = 0 AND md5(head.text) = md5(($3::text[])[1])
          AND ($2::text IS NULL OR head.document_id = $2)
        ORDER BY whole.first_seq
        LIMIT 1
    """


# The document's row ($1 the bank, $2 its id), inserted or touched; returns whether it is new (a
# row just inserted has no xmax; one updated by ON CONFLICT has this transaction's), so that a new
# one skips deleting its (no) old memories. The upsert locks the row: concurrent retains of one
# document queue up here.
UPSERT_DOCUMENT = """
        INSERT INTO {schema}.documents (bank_id, id) VALUES ($1, $2)
        ON CONFLICT (bank_id, id) DO UPDATE SET retained_at = now()
        RETURNING xmax = '0'::xid AS created
    """
# The document's chunks as memories: ids $3, texts $4, the fields every chunk shares $5-$8 (and
# the vectors $9, with $10 as `VECTOR_INDEX` says).
INSERT_MEMORIES = """
        INSERT INTO {schema}.memories
            (id, bank_id, document_id, chunk_index, text, context, tags, metadata, occurred_at)
        SELECT chunk.id, $1, $2, chunk.ord - 1, chunk.text, $5, $6, $7, $8
        FROM unnest($3::uuid[], $4::text[]) WITH ORDINALITY AS chunk (id, text, ord)
    """

# The CTE `vector_index`: whether a retain's memories go into the vector index (schema/0011), when
# bank $1 will hold at least $10 memories with them. Below that, recall compares the bank's every
# vector itself and an index entry would serve no search, while costing the insert more than half
# of its work. Decided once per statement: the memories inserted and those brought in follow it.
VECTOR_INDEX = """vector_index AS (
            SELECT coalesce(sum(c.memories), 0)::bigint + pg_catalog.cardinality($3::uuid[]) >= $10::bigint AS joins
            FROM {schema}.bank_counts AS c WHERE c.bank_id = $1
        )"""
JOINS_VECTOR_INDEX = "(SELECT v.joins FROM vector_index AS v)"
# Follows the CTE `VECTOR_INDEX` in its statement.
INSERT_MEMORIES_EMBEDDED = (
    """
        INSERT INTO {schema}.memories
            (id, bank_id, document_id, chunk_index, text, context, tags, metadata, occurred_at, embedding,
             in_vector_index)
        SELECT chunk.id, $1, $2, chunk.ord - 1, chunk.text, $5, $6, $7, $8, chunk.embedding, """
    + JOINS_VECTOR_INDEX
    + """
        FROM unnest($3::uuid[], $4::text[], $9::{vector_schema}.vector[]) WITH ORDINALITY
            AS chunk (id, text, embedding, ord)
    """
)


def moving_into_vector_index(when: str) -> str:
    """The CTEs `joining` and `moved` (after `VECTOR_INDEX`), if `when` holds: a retain whose
    memories join the vector index brings as many of the bank's older memories outside it in too,
    oldest first, passing over any that another transaction holds (it takes the next ones instead,
    and never waits).

    So a bank grown by retains one after another is wholly in the index by the time it holds twice
    $10 memories, whatever their size. Retains running together as the bank reaches $10 each count
    it without the others' memories and may all stay out, and forgets may leave some out: a large
    bank's searches compare those exactly. Bringing one in writes its row again, in every index
    (the column is in two index conditions, so the update cannot be HOT): close to a second insert,
    for at most $10 memories of a bank.
    """
    # The older memories are picked once, in a CTE of their own: as a subquery of the UPDATE, they
    # were picked again for each row it updated, each time past the rows it had just updated. The
    # UPDATE finds them by an array of their `seq`: joined to the CTE, whose size the planner does
    # not know, it read every memory of the bank to find them (4-5 ms at 3,000).
    return (
        """joining AS MATERIALIZED (
            SELECT o.seq FROM {schema}.memories AS o
            WHERE o.bank_id = $1 AND NOT o.in_vector_index AND """
        + when
        + " AND "
        + JOINS_VECTOR_INDEX
        + """
            ORDER BY o.seq LIMIT pg_catalog.cardinality($3::uuid[])
            FOR UPDATE SKIP LOCKED
        ),
        moved AS (
            UPDATE {schema}.memories AS m SET in_vector_index = true
            WHERE m.bank_id = $1 AND m.seq = ANY (ARRAY(SELECT j.seq FROM joining AS j))
        )"""
    )


# What the schema holds, from the kept counts (schema/0008_bank_bytes.sql): no memory is read. And
# how many transactions may be open at once (`store.quota`), read each time: a restart may change it.
USAGE = """SELECT coalesce(sum(memories), 0)::bigint AS memories, coalesce(sum(bytes), 0)::bigint AS bytes,
               pg_catalog.current_setting('max_connections')::int AS connections
        FROM {schema}.bank_counts"""


def quota_lock(function: str) -> str:
    """The schema's quota lock taken by advisory lock `function`, keyed by the schema's name.

    The key is what every version of Bulkhead has used, so that processes of two versions exclude
    each other. `'{schema}'` puts the quoted identifier inside a literal, which is safe because
    schema names are validated to lowercase letters, digits and underscores (`tenancy`).
    """
    return (
        "SELECT pg_catalog."
        + function
        + "(pg_catalog.hashtextextended('bulkhead:quota:' || n.nspname, 0))"
        + " FROM pg_catalog.pg_namespace AS n WHERE n.oid = '{schema}'::pg_catalog.regnamespace"
    )


def upserting_new_document(*, embedded: bool, usage: bool = False) -> str:
    """`UPSERT_DOCUMENT`, then its memories only if the document is new; returns `created`.

    With `usage`, also `USAGE` as the statement found it: the counts its own rows change are
    kept by statement triggers, which run after it, so they do not include this document.
    `embedded` memories have vectors, and bring older ones into the vector index (`moved`).
    """
    returned = (
        "SELECT upserted.created, usage.* FROM upserted, (" + USAGE + ") AS usage"
        if usage
        else "SELECT created FROM upserted"
    )
    decided = VECTOR_INDEX + ", " if embedded else ""
    moved = ", " + moving_into_vector_index("(SELECT created FROM upserted)") if embedded else ""
    return (
        "WITH upserted AS ("
        + UPSERT_DOCUMENT
        + "), "
        + decided
        + "inserted AS ("
        + (INSERT_MEMORIES_EMBEDDED if embedded else INSERT_MEMORIES)
        + " WHERE (SELECT created FROM upserted))"
        + moved
        + " "
        + returned
    )


# The bank named $1, created if there is none, as the CTE `bank` (one row, `id`). No row when a
# concurrent transaction is creating it: this statement's snapshot predates that commit.
BANK_NAMED = """inserted AS (
            INSERT INTO {schema}.banks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id
        ),
        bank AS (SELECT id FROM inserted UNION ALL SELECT id FROM {schema}.banks WHERE name = $1 LIMIT 1)"""


class MemorySQL(StatementGroup):
    """The statements of one schema's banks, documents and memories (search is in `search`)."""

    bank_id = Template("SELECT id FROM {schema}.banks WHERE name = $1")
    ensure_bank = Template("WITH " + BANK_NAMED + " SELECT id FROM bank")
    # Storage limits (`store.quota`): the schema's quota lock, to itself for an exact check or
    # shared, taken first thing in the string that opens a retain's transaction (so no
    # parameter); forgets never take it, they only free room.
    quota_lock_opening = Template(quota_lock("pg_advisory_xact_lock"))
    quota_lock_shared_opening = Template(quota_lock("pg_advisory_xact_lock_shared"))
    usage = Template(USAGE)
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
    insert_memories = Template(INSERT_MEMORIES)
    insert_memories_embedded = Template(
        "WITH " + VECTOR_INDEX + ", " + moving_into_vector_index("true") + INSERT_MEMORIES_EMBEDDED
    )
    # `UPSERT_DOCUMENT`, and when the document is new (the common case), its memories too: one
    # round trip. A document that was there already gets none here; the caller deletes its old
    # memories and then inserts the new ones.
    upsert_new_document = Template(upserting_new_document(embedded=False))
    upsert_new_document_embedded = Template(upserting_new_document(embedded=True))
    # The same, with the schema's usage beside `created`, for a retain checked the shared way.
    upsert_new_document_counted = Template(upserting_new_document(embedded=False, usage=True))
    upsert_new_document_embedded_counted = Template(upserting_new_document(embedded=True, usage=True))
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
    # Driven from the documents whose first chunk has the same digest (one index probe), each
    # compared whole through its own index scan, so no plan reads the whole bank.
    identical_document = Template(IDENTICAL_DOCUMENT.replace(":bank", "$1"))
    # `ensure_bank` and then `identical_document` in one round trip ($1 the bank's name, $2-$7 as
    # there). No row: a concurrent retain is creating the bank (see `ensure_bank`'s caller).
    ensure_bank_finding_identical = Template(
        "WITH "
        + BANK_NAMED
        + " SELECT bank.id AS bank_id, found.document_id, found.ids FROM bank LEFT JOIN LATERAL ("
        + IDENTICAL_DOCUMENT.replace(":bank", "bank.id")
        + ") AS found ON true"
    )

    delete_bank_memories = Template("""
        WITH gone AS (DELETE FROM {schema}.memories WHERE bank_id = $1 RETURNING 1) SELECT count(*) FROM gone
    """)
    delete_bank = Template("DELETE FROM {schema}.banks WHERE id = $1")
    # The kept counts of each bank, a few rows each (schema/0006_bank_counts.sql): no memory is read.
    list_banks = Template("""
        SELECT b.name,
               coalesce(sum(c.memories), 0)::bigint AS memories,
               coalesce(sum(c.documents), 0)::bigint AS documents,
               max(c.last_retained_at) AS last_retained_at
        FROM {schema}.banks AS b
        LEFT JOIN {schema}.bank_counts AS c ON c.bank_id = b.id
        GROUP BY b.id, b.name
        ORDER BY b.name
    """)
