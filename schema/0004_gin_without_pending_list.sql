-- Recall's full-text search reads a GIN index's whole pending list on every query: after a burst
-- of retains that list held thousands of entries and cost 5-10 ms per recall at 100k memories.
-- Without it, each retain updates the indexes directly (a fraction of a millisecond more).
-- Placeholders: {schema} is the tenant schema.

ALTER INDEX {schema}.memories_search_idx SET (fastupdate = off);
ALTER INDEX {schema}.memories_tags_idx SET (fastupdate = off);
SELECT pg_catalog.gin_clean_pending_list('{schema}.memories_search_idx'::regclass);
SELECT pg_catalog.gin_clean_pending_list('{schema}.memories_tags_idx'::regclass);
