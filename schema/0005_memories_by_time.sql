-- The dashboard pages a bank's memories by when they happened (occurred_at, else retained_at),
-- newest first, by key: this index serves that order and its date-range filter at any size.
-- Placeholders: {schema} is the tenant schema.

CREATE INDEX memories_bank_when_idx ON {schema}.memories
    (bank_id, (coalesce(occurred_at, retained_at)) DESC, seq DESC);
