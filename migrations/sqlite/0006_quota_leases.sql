-- Quota leases (shared/src/quota/mod.rs): a ledger row is now a block of a key's window taken by
-- one process, not a single request. While the lease is live (unsettled, before `expires_ms`) the
-- row counts its whole block (`requests`, `tokens`); once expired unsettled (its process died) it
-- counts what the holder may have handed out (`committed_requests`, `committed_tokens`), a mark
-- raised ahead of use; once settled, `requests` and `tokens` are the exact use. A row of the old
-- shape is one request: it keeps counting one request, even expired unsettled (the safe side).

ALTER TABLE quota_ledger ADD COLUMN requests INTEGER NOT NULL DEFAULT 1;
ALTER TABLE quota_ledger ADD COLUMN committed_requests INTEGER NOT NULL DEFAULT 1;
ALTER TABLE quota_ledger ADD COLUMN committed_tokens INTEGER NOT NULL DEFAULT 0;
-- The process that took the lease (random per start) and its own sequence number: one write that
-- our side gave up waiting for, then retried, can never land twice.
ALTER TABLE quota_ledger ADD COLUMN holder TEXT;
ALTER TABLE quota_ledger ADD COLUMN seq INTEGER;
-- When the lease was taken (a live lease is dated at its expiry): what the provider said was left
-- at a moment only counts against leases taken after it.
ALTER TABLE quota_ledger ADD COLUMN granted_ms INTEGER NOT NULL DEFAULT 0;
UPDATE quota_ledger SET committed_tokens = tokens, granted_ms = at_ms;

CREATE UNIQUE INDEX IF NOT EXISTS quota_ledger_lease ON quota_ledger (holder, seq)
    WHERE holder IS NOT NULL;

-- The running totals now add a row's `requests` (a block), and follow a lease when it is settled
-- (its exact use) or re-dated (to its last hand-out).
DROP TRIGGER IF EXISTS quota_ledger_count_insert;
DROP TRIGGER IF EXISTS quota_ledger_count_settle;
DROP TRIGGER IF EXISTS quota_ledger_count_delete;

CREATE TRIGGER quota_ledger_count_insert AFTER INSERT ON quota_ledger
BEGIN
    INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
    VALUES (NEW.provider, NEW.key_id, '*', 1000, NEW.at_ms - NEW.at_ms % 1000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 1000, NEW.at_ms - NEW.at_ms % 1000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, '*', 60000, NEW.at_ms - NEW.at_ms % 60000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 60000, NEW.at_ms - NEW.at_ms % 60000, NEW.requests, NEW.tokens)
    ON CONFLICT (provider, key_id, scope, grain, start_ms)
    DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens;
END;

CREATE TRIGGER quota_ledger_count_update AFTER UPDATE OF requests, tokens, at_ms ON quota_ledger
WHEN NEW.requests <> OLD.requests OR NEW.tokens <> OLD.tokens OR NEW.at_ms <> OLD.at_ms
BEGIN
    UPDATE quota_buckets SET requests = requests - OLD.requests, tokens = tokens - OLD.tokens
     WHERE provider = OLD.provider AND key_id = OLD.key_id AND scope IN ('*', OLD.route_id)
       AND ((grain = 1000 AND start_ms = OLD.at_ms - OLD.at_ms % 1000)
         OR (grain = 60000 AND start_ms = OLD.at_ms - OLD.at_ms % 60000));
    INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
    VALUES (NEW.provider, NEW.key_id, '*', 1000, NEW.at_ms - NEW.at_ms % 1000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 1000, NEW.at_ms - NEW.at_ms % 1000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, '*', 60000, NEW.at_ms - NEW.at_ms % 60000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 60000, NEW.at_ms - NEW.at_ms % 60000, NEW.requests, NEW.tokens)
    ON CONFLICT (provider, key_id, scope, grain, start_ms)
    DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens;
END;

CREATE TRIGGER quota_ledger_count_delete AFTER DELETE ON quota_ledger
BEGIN
    UPDATE quota_buckets SET requests = requests - OLD.requests, tokens = tokens - OLD.tokens
     WHERE provider = OLD.provider AND key_id = OLD.key_id AND scope IN ('*', OLD.route_id)
       AND ((grain = 1000 AND start_ms = OLD.at_ms - OLD.at_ms % 1000)
         OR (grain = 60000 AND start_ms = OLD.at_ms - OLD.at_ms % 60000));
END;
