"""Recall's candidates in one round trip: the best full-text matches, the nearest vectors, and
the memories around each, every row with its raw signals. Fusion happens in `memory.ranking`.

Parameters are bound by name (`store.search.SearchRequest` holds them):
    :bank          the bank's name (its id is looked up in the statement: one round trip fewer)
    :ranked_query  the `to_tsquery` expression every candidate is ranked by
    :terms         its terms one by one (`to_tsquery` expressions): `matched` numbers those a row holds, from 1
    :words         the query's words, or NULL to pick full-text candidates by all of them
    :common_words  the schema's common words (see `common_words`)
    :vector        the query's vector (hybrid only)
    :tags          tags a memory must all carry, or NULL
    :since :until  the time window on occurred_at (else retained_at), or NULL
    :per_leg       candidates taken from each leg
    :exact_max     a bank of at most this many memories is searched exactly, not by the vector index
    :filtered_max  so are a larger bank's memories passing the filters, when at most this many
"""

from __future__ import annotations

from mcp_server.store.sql import NamedStatement, SchemaNames, StatementGroup, Template
from mcp_server.store.sql.memories import MEMORY_COLUMNS

BANK_ID = "(SELECT b.id FROM {schema}.banks AS b WHERE b.name = :bank)"

FILTERS = """(:tags::text[] IS NULL OR m.tags @> :tags::text[])
          AND (:since::timestamptz IS NULL OR coalesce(m.occurred_at, m.retained_at) >= :since)
          AND (:until::timestamptz IS NULL OR coalesce(m.occurred_at, m.retained_at) <= :until)"""

# Ranking every memory that holds a common word is what makes full-text search slow in a large
# bank, and such a word says little on its own. So when the query has common words, candidates
# are the memories holding any of its rarer words or all of its words; all are still ranked by
# the whole query. Small schemas have no common words, and there nothing changes.
LEXICAL_LEG = (
    """
        words AS (
            SELECT w.lexeme, w.lexeme = ANY(:common_words::text[]) AS common
            FROM unnest(pg_catalog.tsvector_to_array(pg_catalog.to_tsvector('english'::regconfig, :words::text)))
                AS w (lexeme)
        ),
        q AS (
            SELECT pg_catalog.to_tsquery('english'::regconfig, :ranked_query::text) AS ranked,
                   -- Each term alone, in order; NULL for a stop word, which would parse to an
                   -- empty query (and a notice).
                   ARRAY(SELECT CASE WHEN pg_catalog.to_tsvector('english'::regconfig, t.term) <> ''::tsvector
                                     THEN pg_catalog.to_tsquery('english'::regconfig, t.term) END
                         FROM unnest(:terms::text[]) WITH ORDINALITY AS t (term, i) ORDER BY t.i) AS terms,
                   CASE WHEN NOT EXISTS (SELECT 1 FROM words WHERE common)
                        THEN pg_catalog.to_tsquery('english'::regconfig, :ranked_query::text)
                        ELSE pg_catalog.concat_ws(
                            ' | ',
                            (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(lexeme), ' | ')
                             FROM words WHERE NOT common),
                            (SELECT '(' || pg_catalog.string_agg(pg_catalog.quote_literal(lexeme), ' & ') || ')'
                             FROM words)
                        )::tsquery
                   END AS matched
        ),
        lexical AS (
            SELECT m.seq FROM {schema}.memories AS m, q
            WHERE m.bank_id = """
    + BANK_ID
    + """ AND m.search @@ q.matched AND """
    + FILTERS
    + """
            ORDER BY pg_catalog.ts_rank(m.search, q.ranked) DESC, m.seq DESC
            LIMIT :per_leg
        ),"""
)

# The bank's memories, from its kept counts (schema/0006_bank_counts.sql): no memory is read.
BANK_SIZE = "(SELECT coalesce(sum(c.memories), 0) FROM {schema}.bank_counts AS c WHERE c.bank_id = " + BANK_ID + ")"

# The memories the semantic leg may find: the bank's, with a vector, passing the filters.
SEARCHABLE = "m.bank_id = " + BANK_ID + " AND m.embedding IS NOT NULL AND " + FILTERS

FILTERED = "NOT (:tags::text[] IS NULL AND :since::timestamptz IS NULL AND :until::timestamptz IS NULL)"

# The vector index holds every bank of the schema, and a search through it keeps the vectors that
# pass the bank and the filters: when few do, the index gives up (hnsw.max_scan_tuples) before it
# has found enough of them, after visiting tens of thousands. So `way` picks one of three, once:
# - `bank`: a bank of at most :exact_max memories has every vector compared. Its rows are read in
#   order of `seq`: the planner, not knowing the bank when it plans, would scan the whole table
#   otherwise (the LIMIT never cuts, the bank being that small).
# - `eligible`: in a larger bank, the memories a filter lets through, when at most :filtered_max
#   do, are compared. `eligible` finds up to one more, by whichever index the planner, knowing the
#   filter's values, finds quickest, and takes their `seq` alone: a vector is read only to be
#   compared.
# - `index`: the vector index, its condition outside the scan's subquery so that the scan passes
#   on `seq` alone, not whole rows. The index holds half-precision copies of the vectors
#   (schema/0010_vector_index_half_precision.sql), so its order is spelled as the index's
#   expression, with the schema's dimension; the similarities recall ranks by are the full ones.
#   It holds only memories marked `in_vector_index` (schema/0011): those of the bank still outside
#   it, usually none, are compared beside it, found by their own small index.
# All three branches are planned; only the one whose one-time condition holds runs. `+ 0` keeps
# the planner off the vector index where every vector is compared.
SEMANTIC_LEG = (
    """
        bank_size AS (SELECT """
    + BANK_SIZE
    + """ AS memories),
        eligible AS (
            SELECT m.seq FROM {schema}.memories AS m
            WHERE """
    + SEARCHABLE
    + """ AND """
    + FILTERED
    + """ AND (SELECT memories FROM bank_size) > :exact_max
            LIMIT :filtered_max + 1
        ),
        way AS (
            SELECT CASE WHEN (SELECT memories FROM bank_size) <= :exact_max THEN 'bank'
                        WHEN """
    + FILTERED
    + """ AND (SELECT count(*) FROM eligible) <= :filtered_max THEN 'eligible'
                        ELSE 'index' END AS way
        ),
        semantic AS (
            (SELECT i.seq FROM (
                SELECT m.seq FROM {schema}.memories AS m
                WHERE """
    + SEARCHABLE
    + """ AND m.in_vector_index
                ORDER BY (m.embedding::{vector_schema}.halfvec({embedding_dim}))
                         OPERATOR({vector_schema}.<=>) :vector::{vector_schema}.vector::{vector_schema}.halfvec({embedding_dim})
                LIMIT :per_leg
             ) AS i
             WHERE (SELECT way FROM way) = 'index')
            UNION ALL
            (SELECT m.seq FROM {schema}.memories AS m
             WHERE """
    + SEARCHABLE
    + """ AND NOT m.in_vector_index AND (SELECT way FROM way) = 'index'
             ORDER BY (m.embedding OPERATOR({vector_schema}.<=>) :vector::{vector_schema}.vector) + 0
             LIMIT :per_leg)
            UNION ALL
            (SELECT b.seq FROM (
                SELECT m.seq, m.embedding FROM {schema}.memories AS m
                WHERE """
    + SEARCHABLE
    + """ AND (SELECT way FROM way) = 'bank'
                ORDER BY m.seq LIMIT :exact_max
             ) AS b
             ORDER BY (b.embedding OPERATOR({vector_schema}.<=>) :vector::{vector_schema}.vector) + 0
             LIMIT :per_leg)
            UNION ALL
            (SELECT m.seq FROM eligible AS e
             JOIN {schema}.memories AS m ON m.bank_id = """
    + BANK_ID
    + """ AND m.seq = e.seq
             WHERE (SELECT way FROM way) = 'eligible'
             ORDER BY (m.embedding OPERATOR({vector_schema}.<=>) :vector::{vector_schema}.vector) + 0
             LIMIT :per_leg)
        ),"""
)

NO_SEMANTIC_LEG = """
        semantic AS (SELECT NULL::bigint AS seq WHERE false),"""

# Each seed (a candidate of either leg) with the rows around it: the memory retained just after
# it and the two just before it (the second only as the context of the first), in two index
# scans. `store.search` links neighbours from these rows; `lag` over them is each seed's true
# predecessor, since that predecessor is always among them.
AROUND = (
    """
        seeds AS (SELECT seq FROM lexical UNION SELECT seq FROM semantic),
        around AS (
            SELECT DISTINCT ON (w.seq) w.* FROM seeds AS s
            CROSS JOIN LATERAL (
                (SELECT m.* FROM {schema}.memories AS m
                 WHERE m.bank_id = """
    + BANK_ID
    + """ AND m.seq <= s.seq ORDER BY m.seq DESC LIMIT 3)
                UNION ALL
                (SELECT m.* FROM {schema}.memories AS m
                 WHERE m.bank_id = """
    + BANK_ID
    + """ AND m.seq > s.seq ORDER BY m.seq LIMIT 1)
            ) AS w
            ORDER BY w.seq
        )"""
)

COLUMNS = (
    MEMORY_COLUMNS
    + """,
               m.seq IN (SELECT seq FROM seeds) AS seed,
               ("""
    + FILTERS
    + """) AS eligible,
               CASE WHEN m.search @@ q.ranked THEN pg_catalog.ts_rank(m.search, q.ranked) END AS lexical,
               CASE WHEN m.search @@ q.ranked THEN
                   ARRAY(SELECT t.i FROM unnest(q.terms) WITH ORDINALITY AS t (term, i) WHERE m.search @@ t.term)
               END AS matched"""
)

SEARCH_HYBRID = (
    "WITH"
    + LEXICAL_LEG
    + SEMANTIC_LEG
    + AROUND
    + """
        SELECT """
    + COLUMNS
    + """,
               1 - (m.embedding OPERATOR({vector_schema}.<=>) :vector::{vector_schema}.vector) AS cosine,
               1 - (m.embedding OPERATOR({vector_schema}.<=>) lag(m.embedding) OVER (ORDER BY m.seq)) AS prev_similarity
        FROM around AS m, q
    """
)

# Without vectors (no pgvector, or the `none` embedder): the same rows, no similarity.
SEARCH_LEXICAL = (
    "WITH"
    + LEXICAL_LEG
    + NO_SEMANTIC_LEG
    + AROUND
    + """
        SELECT """
    + COLUMNS
    + """, NULL::float8 AS cosine, NULL::float8 AS prev_similarity
        FROM around AS m, q
    """
)


class SearchSQL(StatementGroup):
    """Recall's statements for one schema; `hybrid` and `lexical` are bound by name."""

    search_hybrid = Template(SEARCH_HYBRID)
    search_lexical = Template(SEARCH_LEXICAL)
    # The lexemes of the schema's memories found in more than :rows rows, by the planner's
    # statistics (gathered by ANALYZE, so empty until the table has been analyzed).
    common_words = Template("""
        SELECT e.elem FROM pg_catalog.pg_stats AS s
        JOIN pg_catalog.pg_namespace AS n ON n.nspname = s.schemaname
        JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = s.tablename
        CROSS JOIN LATERAL unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS e (elem, freq)
        WHERE s.schemaname = $1 AND s.tablename = 'memories' AND s.attname = 'search'
          AND e.elem IS NOT NULL AND e.freq * greatest(c.reltuples, 0) > $2
    """)

    def __init__(self, names: SchemaNames) -> None:
        super().__init__(names)
        self.hybrid = NamedStatement(self.search_hybrid)
        self.lexical = NamedStatement(self.search_lexical)
