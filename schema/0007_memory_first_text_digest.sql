-- Retain finds a document identical to the one it is given (so that retaining it again stores
-- nothing new) by its first chunk: this index makes that look-up one probe, however big the bank.
-- Placeholders: {schema} is the tenant schema.

CREATE INDEX memories_bank_first_text_idx ON {schema}.memories (bank_id, md5(text)) WHERE chunk_index = 0;
