-- Running totals of the quota ledger, per second and per minute, kept by triggers in the same
-- transaction as the ledger row. A reservation then sums at most 60 one-second buckets for the
-- sliding minute and 1,440 one-minute buckets for the day, instead of every request of the day.

CREATE TABLE IF NOT EXISTS quota_buckets (
    provider TEXT NOT NULL,
    key_id   TEXT NOT NULL,
    -- '*' for the key across the provider's routes, else the route id
    scope    TEXT NOT NULL,
    -- 1000: one-second buckets (the sliding minute); 60000: one-minute buckets (the day, whose
    -- start is always a whole minute)
    grain    INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    tokens   INTEGER NOT NULL,
    PRIMARY KEY (provider, key_id, scope, grain, start_ms)
) WITHOUT ROWID;

-- What the ledger already holds.
INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
SELECT provider, key_id, '*', 1000, at_ms - at_ms % 1000, COUNT(*), SUM(tokens)
  FROM quota_ledger GROUP BY provider, key_id, at_ms - at_ms % 1000;
INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
SELECT provider, key_id, route_id, 1000, at_ms - at_ms % 1000, COUNT(*), SUM(tokens)
  FROM quota_ledger GROUP BY provider, key_id, route_id, at_ms - at_ms % 1000;
INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
SELECT provider, key_id, '*', 60000, at_ms - at_ms % 60000, COUNT(*), SUM(tokens)
  FROM quota_ledger GROUP BY provider, key_id, at_ms - at_ms % 60000;
INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
SELECT provider, key_id, route_id, 60000, at_ms - at_ms % 60000, COUNT(*), SUM(tokens)
  FROM quota_ledger GROUP BY provider, key_id, route_id, at_ms - at_ms % 60000;

CREATE TRIGGER IF NOT EXISTS quota_ledger_count_insert AFTER INSERT ON quota_ledger
BEGIN
    INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
    VALUES (NEW.provider, NEW.key_id, '*', 1000, NEW.at_ms - NEW.at_ms % 1000, 1, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 1000, NEW.at_ms - NEW.at_ms % 1000, 1, NEW.tokens),
           (NEW.provider, NEW.key_id, '*', 60000, NEW.at_ms - NEW.at_ms % 60000, 1, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 60000, NEW.at_ms - NEW.at_ms % 60000, 1, NEW.tokens)
    ON CONFLICT (provider, key_id, scope, grain, start_ms)
    DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens;
END;

CREATE TRIGGER IF NOT EXISTS quota_ledger_count_settle AFTER UPDATE OF tokens ON quota_ledger
WHEN NEW.tokens <> OLD.tokens
BEGIN
    UPDATE quota_buckets SET tokens = tokens + NEW.tokens - OLD.tokens
     WHERE provider = NEW.provider AND key_id = NEW.key_id AND scope IN ('*', NEW.route_id)
       AND ((grain = 1000 AND start_ms = NEW.at_ms - NEW.at_ms % 1000)
         OR (grain = 60000 AND start_ms = NEW.at_ms - NEW.at_ms % 60000));
END;

CREATE TRIGGER IF NOT EXISTS quota_ledger_count_delete AFTER DELETE ON quota_ledger
BEGIN
    UPDATE quota_buckets SET requests = requests - 1, tokens = tokens - OLD.tokens
     WHERE provider = OLD.provider AND key_id = OLD.key_id AND scope IN ('*', OLD.route_id)
       AND ((grain = 1000 AND start_ms = OLD.at_ms - OLD.at_ms % 1000)
         OR (grain = 60000 AND start_ms = OLD.at_ms - OLD.at_ms % 60000));
END;

-- Reservations still in flight (or left by a process that died): few, and subtracted once expired.
CREATE INDEX IF NOT EXISTS quota_ledger_unsettled ON quota_ledger (provider, key_id, at_ms)
    WHERE settled = 0;
