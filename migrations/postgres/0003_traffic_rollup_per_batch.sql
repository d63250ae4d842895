-- The traffic rollup is summed once per request-log batch by the store (as migrations/sqlite/0014
-- does); the trigger keeps only the trouble rollup, and fires only for requests that failed or
-- fell back.
CREATE OR REPLACE FUNCTION freerouter_request_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bucket BIGINT := NEW.at_ms - NEW.at_ms % 300000;
BEGIN
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
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS request_log_rollups ON request_log;
CREATE TRIGGER request_log_rollups AFTER INSERT ON request_log
FOR EACH ROW WHEN (NEW.status <> 200 OR NEW.attempts > 1)
EXECUTE FUNCTION freerouter_request_rollups();
