-- FreeRouter's shared store: the catalog, route and key health, quota windows, the request log.
-- Written to be safe when two processes race to apply it (IF NOT EXISTS / OR IGNORE).

CREATE TABLE IF NOT EXISTS catalog_meta (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    -- bumped by every change to routes (triggers below); the gateway polls it
    catalog_version INTEGER NOT NULL,
    -- bumped when health is reset from outside the gateway
    health_version  INTEGER NOT NULL,
    defaults_seeded INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO catalog_meta (id, catalog_version, health_version, defaults_seeded) VALUES (1, 1, 1, 0);

CREATE TABLE IF NOT EXISTS routes (
    route_id              TEXT PRIMARY KEY,
    provider              TEXT NOT NULL,
    upstream_model        TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    rank                  INTEGER NOT NULL,
    tags                  TEXT NOT NULL DEFAULT '[]',
    context_window_tokens INTEGER NOT NULL,
    max_output_tokens     INTEGER NOT NULL,
    enabled               INTEGER NOT NULL DEFAULT 1,
    origin                TEXT NOT NULL CHECK (origin IN ('default', 'discovered', 'manual')),
    limits                TEXT NOT NULL DEFAULT '{}',
    created_ms            INTEGER NOT NULL,
    updated_ms            INTEGER NOT NULL
);

CREATE TRIGGER IF NOT EXISTS routes_bump_on_insert AFTER INSERT ON routes
BEGIN UPDATE catalog_meta SET catalog_version = catalog_version + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS routes_bump_on_update AFTER UPDATE ON routes
BEGIN UPDATE catalog_meta SET catalog_version = catalog_version + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS routes_bump_on_delete AFTER DELETE ON routes
BEGIN UPDATE catalog_meta SET catalog_version = catalog_version + 1 WHERE id = 1; END;

CREATE TABLE IF NOT EXISTS route_health (
    route_id               TEXT PRIMARY KEY,
    state                  TEXT NOT NULL CHECK (state IN ('healthy', 'cooling', 'too_slow', 'potentially_outdated')),
    cooldown_until_ms      INTEGER NOT NULL DEFAULT 0,
    consecutive_failures   INTEGER NOT NULL DEFAULT 0,
    consecutive_timeouts   INTEGER NOT NULL DEFAULT 0,
    consecutive_not_found  INTEGER NOT NULL DEFAULT 0,
    learned_context_window INTEGER,
    last_error             TEXT,
    last_error_ms          INTEGER,
    last_success_ms        INTEGER,
    updated_ms             INTEGER NOT NULL
);

-- a key cooling on one route (route_id '*' = on every route of the provider)
CREATE TABLE IF NOT EXISTS key_cooldowns (
    provider          TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    route_id          TEXT NOT NULL,
    cooldown_until_ms INTEGER NOT NULL,
    reason            TEXT NOT NULL,
    strikes           INTEGER NOT NULL DEFAULT 0,
    updated_ms        INTEGER NOT NULL,
    PRIMARY KEY (provider, key_id, route_id)
);

CREATE TABLE IF NOT EXISTS invalid_keys (
    provider    TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    since_ms    INTEGER NOT NULL,
    last_status INTEGER NOT NULL,
    PRIMARY KEY (provider, key_id)
);

-- what a key has used of a window, and what the provider last said is left
CREATE TABLE IF NOT EXISTS quota_windows (
    provider           TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    scope              TEXT NOT NULL,   -- '*' for provider-wide, else a route id
    window             TEXT NOT NULL CHECK (window IN ('minute', 'day')),
    window_start_ms    INTEGER NOT NULL,
    requests_used      INTEGER NOT NULL DEFAULT 0,
    tokens_used        INTEGER NOT NULL DEFAULT 0,
    remaining_requests INTEGER,
    remaining_tokens   INTEGER,
    reset_at_ms        INTEGER,
    updated_ms         INTEGER NOT NULL,
    PRIMARY KEY (provider, key_id, scope, window)
);

CREATE TABLE IF NOT EXISTS request_log (
    id              INTEGER PRIMARY KEY,
    request_id      TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    endpoint        TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    route_id        TEXT,
    provider        TEXT,
    attempts        INTEGER NOT NULL,
    status          INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    error_class     TEXT,
    latency_ms      INTEGER NOT NULL,
    ttft_ms         INTEGER,
    tokens_in       INTEGER,
    tokens_out      INTEGER,
    stream          INTEGER NOT NULL,
    trail           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS request_log_at ON request_log (at_ms);
