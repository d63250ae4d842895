-- Route aliases (one model served by several providers) and the quota ledger.

ALTER TABLE routes ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';

-- One row per upstream request reserved against a key: the sliding minute and the provider's day
-- are counted from here, in the same statement that reserves (see store/ledger.rs).
CREATE TABLE IF NOT EXISTS quota_ledger (
    id         INTEGER PRIMARY KEY,
    provider   TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    route_id   TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    tokens     INTEGER NOT NULL,
    -- 0 while the request is in flight (tokens are the estimate); 1 once settled with real usage
    settled    INTEGER NOT NULL DEFAULT 0,
    -- an unsettled reservation past this is stale (its process died) and stops counting
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_ledger_key_time ON quota_ledger (provider, key_id, at_ms);
CREATE INDEX IF NOT EXISTS quota_ledger_route_time ON quota_ledger (provider, key_id, route_id, at_ms);
