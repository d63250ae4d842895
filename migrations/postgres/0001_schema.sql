-- FreeRouter's store on PostgreSQL: the schema migrations/sqlite/0001–0012 add up to, in one step.
-- Every integer is BIGINT (the code binds and reads 64-bit integers only; flags are 0/1), every
-- text TEXT, so one set of statements reads both engines alike. What SQLite's triggers keep (the
-- catalog version, the quota ledger's running totals, the console's rollups) PL/pgSQL triggers keep
-- here, in the same transaction as the row that changed them. A change to the catalog or health
-- version, and any health a process writes, is also announced on the `freerouter_changes` channel
-- (LISTEN/NOTIFY), so every host reloads at once instead of at its next poll.

CREATE TABLE IF NOT EXISTS catalog_meta (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    -- bumped by every change to routes (triggers below); the gateways listen and poll
    catalog_version BIGINT NOT NULL,
    -- bumped when health is reset from outside the gateway
    health_version  BIGINT NOT NULL,
    defaults_seeded BIGINT NOT NULL DEFAULT 0
);
INSERT INTO catalog_meta (id, catalog_version, health_version, defaults_seeded)
VALUES (1, 1, 1, 0) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS routes (
    route_id              TEXT PRIMARY KEY,
    provider              TEXT NOT NULL,
    upstream_model        TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    rank                  BIGINT NOT NULL,
    tags                  TEXT NOT NULL DEFAULT '[]',
    context_window_tokens BIGINT NOT NULL,
    max_output_tokens     BIGINT NOT NULL,
    enabled               BIGINT NOT NULL DEFAULT 1,
    origin                TEXT NOT NULL CHECK (origin IN ('default', 'discovered', 'manual')),
    limits                TEXT NOT NULL DEFAULT '{}',
    created_ms            BIGINT NOT NULL,
    updated_ms            BIGINT NOT NULL,
    aliases               TEXT NOT NULL DEFAULT '[]'
);

CREATE OR REPLACE FUNCTION freerouter_bump_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_meta SET catalog_version = catalog_version + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER routes_bump AFTER INSERT OR UPDATE OR DELETE ON routes
FOR EACH ROW EXECUTE FUNCTION freerouter_bump_catalog();

-- NOTIFY is delivered at commit and folded within a transaction: one wake-up per change.
CREATE OR REPLACE FUNCTION freerouter_announce_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('freerouter_changes', 'versions');
    RETURN NULL;
END $$;
CREATE TRIGGER catalog_meta_announce AFTER UPDATE ON catalog_meta
FOR EACH STATEMENT EXECUTE FUNCTION freerouter_announce_versions();

CREATE TABLE IF NOT EXISTS route_health (
    route_id               TEXT PRIMARY KEY,
    state                  TEXT NOT NULL CHECK (state IN ('healthy', 'cooling', 'too_slow', 'potentially_outdated')),
    cooldown_until_ms      BIGINT NOT NULL DEFAULT 0,
    consecutive_failures   BIGINT NOT NULL DEFAULT 0,
    consecutive_timeouts   BIGINT NOT NULL DEFAULT 0,
    consecutive_not_found  BIGINT NOT NULL DEFAULT 0,
    learned_context_window BIGINT,
    last_error             TEXT,
    last_error_ms          BIGINT,
    last_success_ms        BIGINT,
    updated_ms             BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS key_cooldowns (
    provider          TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    route_id          TEXT NOT NULL,
    cooldown_until_ms BIGINT NOT NULL,
    reason            TEXT NOT NULL,
    strikes           BIGINT NOT NULL DEFAULT 0,
    updated_ms        BIGINT NOT NULL,
    PRIMARY KEY (provider, key_id, route_id)
);

CREATE TABLE IF NOT EXISTS invalid_keys (
    provider    TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    since_ms    BIGINT NOT NULL,
    last_status BIGINT NOT NULL,
    retry_at_ms BIGINT NOT NULL DEFAULT 0,
    strikes     BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (provider, key_id)
);

-- Health written by any process is announced too: every other gateway takes in a cooldown or an
-- invalid key another host met, instead of meeting it again itself.
CREATE OR REPLACE FUNCTION freerouter_announce_health() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('freerouter_changes', 'health');
    RETURN NULL;
END $$;
CREATE TRIGGER route_health_announce AFTER INSERT OR UPDATE ON route_health
FOR EACH STATEMENT EXECUTE FUNCTION freerouter_announce_health();
CREATE TRIGGER key_cooldowns_announce AFTER INSERT OR UPDATE ON key_cooldowns
FOR EACH STATEMENT EXECUTE FUNCTION freerouter_announce_health();
CREATE TRIGGER invalid_keys_announce AFTER INSERT OR UPDATE ON invalid_keys
FOR EACH STATEMENT EXECUTE FUNCTION freerouter_announce_health();

CREATE TABLE IF NOT EXISTS quota_windows (
    provider           TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    scope              TEXT NOT NULL,   -- '*' for provider-wide, else a route id
    "window"           TEXT NOT NULL CHECK ("window" IN ('minute', 'day')),
    window_start_ms    BIGINT NOT NULL,
    requests_used      BIGINT NOT NULL DEFAULT 0,
    tokens_used        BIGINT NOT NULL DEFAULT 0,
    remaining_requests BIGINT,
    remaining_tokens   BIGINT,
    reset_at_ms        BIGINT,
    updated_ms         BIGINT NOT NULL,
    PRIMARY KEY (provider, key_id, scope, "window")
);

CREATE TABLE IF NOT EXISTS request_log (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    request_id      TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    endpoint        TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    route_id        TEXT,
    provider        TEXT,
    attempts        BIGINT NOT NULL,
    status          BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    error_class     TEXT,
    latency_ms      BIGINT NOT NULL,
    ttft_ms         BIGINT,
    tokens_in       BIGINT,
    tokens_out      BIGINT,
    stream          BIGINT NOT NULL,
    trail           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS request_log_at ON request_log (at_ms);
-- The latest errors, newest first, without walking back through every served request.
CREATE INDEX IF NOT EXISTS request_log_errors ON request_log (at_ms) WHERE status <> 200;

-- A lease per row (see migrations/sqlite/0006 and shared/src/store/ledger_sql.rs).
CREATE TABLE IF NOT EXISTS quota_ledger (
    id                 BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    provider           TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    route_id           TEXT NOT NULL,
    at_ms              BIGINT NOT NULL,
    tokens             BIGINT NOT NULL,
    settled            BIGINT NOT NULL DEFAULT 0,
    expires_ms         BIGINT NOT NULL,
    requests           BIGINT NOT NULL DEFAULT 1,
    committed_requests BIGINT NOT NULL DEFAULT 1,
    committed_tokens   BIGINT NOT NULL DEFAULT 0,
    holder             TEXT,
    seq                BIGINT,
    granted_ms         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS quota_ledger_key_time ON quota_ledger (provider, key_id, at_ms);
CREATE INDEX IF NOT EXISTS quota_ledger_route_time ON quota_ledger (provider, key_id, route_id, at_ms);
CREATE INDEX IF NOT EXISTS quota_ledger_unsettled ON quota_ledger (provider, key_id, at_ms)
    WHERE settled = 0;
CREATE UNIQUE INDEX IF NOT EXISTS quota_ledger_lease ON quota_ledger (holder, seq)
    WHERE holder IS NOT NULL;

-- Running totals of the ledger per second and per minute (migrations/sqlite/0005).
CREATE TABLE IF NOT EXISTS quota_buckets (
    provider TEXT NOT NULL,
    key_id   TEXT NOT NULL,
    scope    TEXT NOT NULL,
    grain    BIGINT NOT NULL,
    start_ms BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    tokens   BIGINT NOT NULL,
    PRIMARY KEY (provider, key_id, scope, grain, start_ms)
);

CREATE OR REPLACE FUNCTION freerouter_bucket_add(
    p TEXT, k TEXT, r TEXT, at BIGINT, n BIGINT, t BIGINT
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO quota_buckets AS b (provider, key_id, scope, grain, start_ms, requests, tokens)
    VALUES (p, k, '*', 1000, at - at % 1000, n, t),
           (p, k, r, 1000, at - at % 1000, n, t),
           (p, k, '*', 60000, at - at % 60000, n, t),
           (p, k, r, 60000, at - at % 60000, n, t)
    ON CONFLICT (provider, key_id, scope, grain, start_ms)
    DO UPDATE SET requests = b.requests + excluded.requests, tokens = b.tokens + excluded.tokens;
$$;

CREATE OR REPLACE FUNCTION freerouter_bucket_remove(
    p TEXT, k TEXT, r TEXT, at BIGINT, n BIGINT, t BIGINT
) RETURNS void LANGUAGE sql AS $$
    UPDATE quota_buckets SET requests = requests - n, tokens = tokens - t
     WHERE provider = p AND key_id = k AND scope IN ('*', r)
       AND ((grain = 1000 AND start_ms = at - at % 1000)
         OR (grain = 60000 AND start_ms = at - at % 60000));
$$;

CREATE OR REPLACE FUNCTION freerouter_ledger_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF TG_OP = 'DELETE' OR NEW.requests <> OLD.requests OR NEW.tokens <> OLD.tokens
           OR NEW.at_ms <> OLD.at_ms THEN
            PERFORM freerouter_bucket_remove(OLD.provider, OLD.key_id, OLD.route_id, OLD.at_ms,
                                             OLD.requests, OLD.tokens);
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.requests <> OLD.requests
           OR NEW.tokens <> OLD.tokens OR NEW.at_ms <> OLD.at_ms)) THEN
        PERFORM freerouter_bucket_add(NEW.provider, NEW.key_id, NEW.route_id, NEW.at_ms,
                                      NEW.requests, NEW.tokens);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER quota_ledger_count AFTER INSERT OR UPDATE OR DELETE ON quota_ledger
FOR EACH ROW EXECUTE FUNCTION freerouter_ledger_count();

CREATE TABLE IF NOT EXISTS suggestions (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('remove_route', 'clear_stale', 'add_route')),
    route_id       TEXT NOT NULL,
    provider       TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    evidence       TEXT NOT NULL,
    created_ms     BIGINT NOT NULL,
    seen_ms        BIGINT NOT NULL,
    decided_ms     BIGINT,
    decided_by     TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS suggestions_one_pending
    ON suggestions (kind, route_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS suggestions_status ON suggestions (status, seen_ms);

CREATE TABLE IF NOT EXISTS supervisor_verdicts (
    provider        TEXT NOT NULL,
    upstream_model  TEXT NOT NULL,
    free_chat_model BIGINT NOT NULL,
    confidence      TEXT NOT NULL,
    reason          TEXT NOT NULL,
    sources         TEXT NOT NULL,
    asked_route     TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    PRIMARY KEY (provider, upstream_model)
);

-- Traffic and trouble summed per 5 minutes for the web console (migrations/sqlite/0004).
CREATE TABLE IF NOT EXISTS traffic_rollup (
    bucket_ms  BIGINT PRIMARY KEY,
    requests   BIGINT NOT NULL,
    served     BIGINT NOT NULL,
    fell_back  BIGINT NOT NULL,
    tokens_in  BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS trouble_rollup (
    bucket_ms BIGINT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('fallback', 'error')),
    reason    TEXT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (bucket_ms, kind, reason)
);

-- A trail `route:result,route:result`: an attempt's result is what follows its last ':'.
CREATE OR REPLACE FUNCTION freerouter_request_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bucket BIGINT := NEW.at_ms - NEW.at_ms % 300000;
BEGIN
    INSERT INTO traffic_rollup AS t (bucket_ms, requests, served, fell_back, tokens_in, tokens_out)
    VALUES (bucket, 1,
            CASE WHEN NEW.status = 200 THEN 1 ELSE 0 END,
            CASE WHEN NEW.status = 200 AND NEW.attempts > 1 THEN 1 ELSE 0 END,
            COALESCE(NEW.tokens_in, 0), COALESCE(NEW.tokens_out, 0))
    ON CONFLICT (bucket_ms) DO UPDATE SET
        requests = t.requests + 1, served = t.served + excluded.served,
        fell_back = t.fell_back + excluded.fell_back,
        tokens_in = t.tokens_in + excluded.tokens_in, tokens_out = t.tokens_out + excluded.tokens_out;
    DELETE FROM traffic_rollup WHERE bucket_ms < NEW.at_ms - 8 * 86400000;
    IF NEW.status <> 200 OR NEW.attempts > 1 THEN
        INSERT INTO trouble_rollup AS r (bucket_ms, kind, reason, count)
        SELECT bucket, 'fallback', a.result, COUNT(*)
          FROM (SELECT substring(attempt FROM '[^:]*$') AS result
                  FROM regexp_split_to_table(NEW.trail, ',') AS attempt) a
         WHERE a.result NOT IN ('', 'ok')
         GROUP BY a.result
        ON CONFLICT (bucket_ms, kind, reason) DO UPDATE SET count = r.count + excluded.count;
        IF NEW.status <> 200 THEN
            INSERT INTO trouble_rollup AS r (bucket_ms, kind, reason, count)
            VALUES (bucket, 'error', NEW.outcome, 1)
            ON CONFLICT (bucket_ms, kind, reason) DO UPDATE SET count = r.count + 1;
        END IF;
        DELETE FROM trouble_rollup WHERE bucket_ms < NEW.at_ms - 8 * 86400000;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER request_log_rollups AFTER INSERT ON request_log
FOR EACH ROW EXECUTE FUNCTION freerouter_request_rollups();

CREATE TABLE IF NOT EXISTS stored_responses (
    id           TEXT PRIMARY KEY,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    response     TEXT NOT NULL,
    conversation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stored_responses_expiry ON stored_responses (expires_ms);
