"""Looking inside a bank: its statistics, pages of its memories, one memory, an export, and
dropping the whole bank. What the dashboard reads and deletes beyond the tools' own statements.

Pages are read by key, never by OFFSET: each page starts after the last row of the one before,
so every page costs the same however deep it is. The page statements bind by name:
    :bank_id       the bank
    :text          words a memory must match (`websearch_to_tsquery` syntax), or NULL
    :tags          tags a memory must all carry, or NULL
    :since :until  the time window on occurred_at (else retained_at), or NULL
    :after_seq     the last row of the previous page (its seq), or NULL for the first page
    :after_when    by time only: that row's occurred_at (else retained_at)
    :page_rows     rows to read
"""

from __future__ import annotations

from mcp_server.store.sql import NamedStatement, SchemaNames, StatementGroup, Template
from mcp_server.store.sql.memories import MEMORY_COLUMNS

COLUMNS = MEMORY_COLUMNS

FILTERS = """m.bank_id = :bank_id
          AND (:text::text IS NULL OR m.search @@ pg_catalog.websearch_to_tsquery('english'::regconfig, :text::text))
          AND (:tags::text[] IS NULL OR m.tags @> :tags::text[])
          AND (:since::timestamptz IS NULL OR coalesce(m.occurred_at, m.retained_at) >= :since)
          AND (:until::timestamptz IS NULL OR coalesce(m.occurred_at, m.retained_at) <= :until)"""

# Newest retained first: along (bank_id, seq).
PAGE_BY_RETAINED = (
    "SELECT "
    + COLUMNS
    + """ FROM {schema}.memories AS m
    WHERE """
    + FILTERS
    + """
      AND (:after_seq::bigint IS NULL OR m.seq < :after_seq)
    ORDER BY m.seq DESC
    LIMIT :page_rows
"""
)

# Newest occurred first (retained_at for memories without occurred_at): along memories_bank_when_idx.
PAGE_BY_OCCURRED = (
    "SELECT "
    + COLUMNS
    + """ FROM {schema}.memories AS m
    WHERE """
    + FILTERS
    + """
      AND (:after_seq::bigint IS NULL
           OR (coalesce(m.occurred_at, m.retained_at), m.seq) < (:after_when::timestamptz, :after_seq))
    ORDER BY coalesce(m.occurred_at, m.retained_at) DESC, m.seq DESC
    LIMIT :page_rows
"""
)

# Counted per bank along indexes (the counts scan only the bank's index entries); the bytes read
# every row of the bank, so only the banks page asks for them, not the pages of one bank.
BANK_COUNTS = """
    SELECT b.name,
           (SELECT count(*) FROM {schema}.memories AS m WHERE m.bank_id = b.id) AS memories,
           (SELECT count(*) FROM {schema}.documents AS d WHERE d.bank_id = b.id) AS documents,
           (SELECT max(m.retained_at) FROM {schema}.memories AS m WHERE m.bank_id = b.id) AS last_retained_at,"""
BANK_BYTES = """
           (SELECT coalesce(sum(pg_catalog.octet_length(m.text) + coalesce(pg_catalog.octet_length(m.context), 0)), 0)
            FROM {schema}.memories AS m WHERE m.bank_id = b.id)::bigint AS bytes
    FROM {schema}.banks AS b"""
NO_BYTES = """
           NULL::bigint AS bytes
    FROM {schema}.banks AS b"""


class BrowseSQL(StatementGroup):
    """The dashboard's statements for one schema; `by_retained` and `by_occurred` bind by name."""

    page_by_retained = Template(PAGE_BY_RETAINED)
    page_by_occurred = Template(PAGE_BY_OCCURRED)
    bank_stats = Template(BANK_COUNTS + BANK_BYTES + " ORDER BY b.name")
    one_bank_stats = Template(BANK_COUNTS + NO_BYTES + " WHERE b.name = $1")
    memory = Template(
        "SELECT " + COLUMNS + ", m.chunk_index FROM {schema}.memories AS m WHERE m.bank_id = $1 AND m.id = $2"
    )
    memories_by_ids = Template(
        "SELECT " + COLUMNS + " FROM {schema}.memories AS m WHERE m.bank_id = $1 AND m.id = ANY($2::uuid[])"
        " ORDER BY m.seq DESC"
    )
    document_memories = Template("SELECT count(*) FROM {schema}.memories WHERE bank_id = $1 AND document_id = $2")
    export_page = Template(
        "SELECT " + COLUMNS + ", m.chunk_index FROM {schema}.memories AS m"
        " WHERE m.bank_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3"
    )

    def __init__(self, names: SchemaNames) -> None:
        super().__init__(names)
        self.by_retained = NamedStatement(self.page_by_retained)
        self.by_occurred = NamedStatement(self.page_by_occurred)
