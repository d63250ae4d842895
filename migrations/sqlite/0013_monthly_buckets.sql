-- Monthly quotas (`rpmonth`, `tpmonth`): the running totals gain one-hour buckets (grain 3600000),
-- summed since the calendar month's start (a whole hour). Ledger rows are deleted after two days;
-- the hourly buckets keep counting them for 32, so a deleted row is taken off the hourly buckets
-- only while unsettled (a lease dropped unused), never when the pruner removes a settled one.

INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
SELECT provider, key_id, '*', 3600000, at_ms - at_ms % 3600000, SUM(requests), SUM(tokens)
  FROM quota_ledger GROUP BY provider, key_id, at_ms - at_ms % 3600000;
INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
SELECT provider, key_id, route_id, 3600000, at_ms - at_ms % 3600000, SUM(requests), SUM(tokens)
  FROM quota_ledger GROUP BY provider, key_id, route_id, at_ms - at_ms % 3600000;

DROP TRIGGER IF EXISTS quota_ledger_count_insert;
DROP TRIGGER IF EXISTS quota_ledger_count_update;
DROP TRIGGER IF EXISTS quota_ledger_count_delete;

CREATE TRIGGER quota_ledger_count_insert AFTER INSERT ON quota_ledger
BEGIN
    INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
    VALUES (NEW.provider, NEW.key_id, '*', 1000, NEW.at_ms - NEW.at_ms % 1000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 1000, NEW.at_ms - NEW.at_ms % 1000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, '*', 60000, NEW.at_ms - NEW.at_ms % 60000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 60000, NEW.at_ms - NEW.at_ms % 60000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, '*', 3600000, NEW.at_ms - NEW.at_ms % 3600000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 3600000, NEW.at_ms - NEW.at_ms % 3600000, NEW.requests, NEW.tokens)
    ON CONFLICT (provider, key_id, scope, grain, start_ms)
    DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens;
END;

CREATE TRIGGER quota_ledger_count_update AFTER UPDATE OF requests, tokens, at_ms ON quota_ledger
WHEN NEW.requests <> OLD.requests OR NEW.tokens <> OLD.tokens OR NEW.at_ms <> OLD.at_ms
BEGIN
    UPDATE quota_buckets SET requests = requests - OLD.requests, tokens = tokens - OLD.tokens
     WHERE provider = OLD.provider AND key_id = OLD.key_id AND scope IN ('*', OLD.route_id)
       AND ((grain = 1000 AND start_ms = OLD.at_ms - OLD.at_ms % 1000)
         OR (grain = 60000 AND start_ms = OLD.at_ms - OLD.at_ms % 60000)
         OR (grain = 3600000 AND start_ms = OLD.at_ms - OLD.at_ms % 3600000));
    INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
    VALUES (NEW.provider, NEW.key_id, '*', 1000, NEW.at_ms - NEW.at_ms % 1000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 1000, NEW.at_ms - NEW.at_ms % 1000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, '*', 60000, NEW.at_ms - NEW.at_ms % 60000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 60000, NEW.at_ms - NEW.at_ms % 60000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, '*', 3600000, NEW.at_ms - NEW.at_ms % 3600000, NEW.requests, NEW.tokens),
           (NEW.provider, NEW.key_id, NEW.route_id, 3600000, NEW.at_ms - NEW.at_ms % 3600000, NEW.requests, NEW.tokens)
    ON CONFLICT (provider, key_id, scope, grain, start_ms)
    DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens;
END;

CREATE TRIGGER quota_ledger_count_delete AFTER DELETE ON quota_ledger
BEGIN
    UPDATE quota_buckets SET requests = requests - OLD.requests, tokens = tokens - OLD.tokens
     WHERE provider = OLD.provider AND key_id = OLD.key_id AND scope IN ('*', OLD.route_id)
       AND ((grain = 1000 AND start_ms = OLD.at_ms - OLD.at_ms % 1000)
         OR (grain = 60000 AND start_ms = OLD.at_ms - OLD.at_ms % 60000)
         OR (grain = 3600000 AND OLD.settled = 0 AND start_ms = OLD.at_ms - OLD.at_ms % 3600000));
END;
