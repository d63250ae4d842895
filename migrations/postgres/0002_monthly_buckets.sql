-- Monthly quotas (`rpmonth`, `tpmonth`): the running totals gain one-hour buckets (grain 3600000),
-- as migrations/sqlite/0013 does. A deleted ledger row leaves the hourly buckets only while
-- unsettled (a lease dropped unused): the pruner's deletes of settled rows keep counting for the month.

INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
SELECT provider, key_id, '*', 3600000, at_ms - at_ms % 3600000, SUM(requests), SUM(tokens)
  FROM quota_ledger GROUP BY provider, key_id, at_ms - at_ms % 3600000;
INSERT INTO quota_buckets (provider, key_id, scope, grain, start_ms, requests, tokens)
SELECT provider, key_id, route_id, 3600000, at_ms - at_ms % 3600000, SUM(requests), SUM(tokens)
  FROM quota_ledger GROUP BY provider, key_id, route_id, at_ms - at_ms % 3600000;

CREATE OR REPLACE FUNCTION freerouter_bucket_add(
    p TEXT, k TEXT, r TEXT, at BIGINT, n BIGINT, t BIGINT
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO quota_buckets AS b (provider, key_id, scope, grain, start_ms, requests, tokens)
    VALUES (p, k, '*', 1000, at - at % 1000, n, t),
           (p, k, r, 1000, at - at % 1000, n, t),
           (p, k, '*', 60000, at - at % 60000, n, t),
           (p, k, r, 60000, at - at % 60000, n, t),
           (p, k, '*', 3600000, at - at % 3600000, n, t),
           (p, k, r, 3600000, at - at % 3600000, n, t)
    ON CONFLICT (provider, key_id, scope, grain, start_ms)
    DO UPDATE SET requests = b.requests + excluded.requests, tokens = b.tokens + excluded.tokens;
$$;

-- `hourly`: whether the hourly buckets lose the row too (a re-dated or resized row, an unsettled
-- one deleted), or keep it (a settled row the pruner deletes).
CREATE OR REPLACE FUNCTION freerouter_bucket_remove(
    p TEXT, k TEXT, r TEXT, at BIGINT, n BIGINT, t BIGINT, hourly BOOLEAN
) RETURNS void LANGUAGE sql AS $$
    UPDATE quota_buckets SET requests = requests - n, tokens = tokens - t
     WHERE provider = p AND key_id = k AND scope IN ('*', r)
       AND ((grain = 1000 AND start_ms = at - at % 1000)
         OR (grain = 60000 AND start_ms = at - at % 60000)
         OR (hourly AND grain = 3600000 AND start_ms = at - at % 3600000));
$$;

CREATE OR REPLACE FUNCTION freerouter_ledger_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM freerouter_bucket_remove(OLD.provider, OLD.key_id, OLD.route_id, OLD.at_ms,
                                         OLD.requests, OLD.tokens, OLD.settled = 0);
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.requests <> OLD.requests OR NEW.tokens <> OLD.tokens OR NEW.at_ms <> OLD.at_ms THEN
            PERFORM freerouter_bucket_remove(OLD.provider, OLD.key_id, OLD.route_id, OLD.at_ms,
                                             OLD.requests, OLD.tokens, TRUE);
            PERFORM freerouter_bucket_add(NEW.provider, NEW.key_id, NEW.route_id, NEW.at_ms,
                                          NEW.requests, NEW.tokens);
        END IF;
    ELSE
        PERFORM freerouter_bucket_add(NEW.provider, NEW.key_id, NEW.route_id, NEW.at_ms,
                                      NEW.requests, NEW.tokens);
    END IF;
    RETURN NULL;
END $$;

-- The six-argument form is no longer called.
DROP FUNCTION IF EXISTS freerouter_bucket_remove(TEXT, TEXT, TEXT, BIGINT, BIGINT, BIGINT);
