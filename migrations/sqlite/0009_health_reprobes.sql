-- Invalid-key marks are retried after a backoff (a lone gateway recovers a key refused by a
-- provider's hiccup): when the next try is due and how many refusals came in a row. Marks written
-- before this migration are due at once (one request tries the key again).
ALTER TABLE invalid_keys ADD COLUMN retry_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invalid_keys ADD COLUMN strikes INTEGER NOT NULL DEFAULT 1;
