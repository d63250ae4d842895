-- Traffic and trouble summed per 5 minutes as the request log is written, for the web console:
-- a page then reads at most a few hundred small rows, however busy the day was, instead of
-- scanning ~100k request_log rows on every load. The triggers keep 8 days.

CREATE TABLE IF NOT EXISTS traffic_rollup (
    bucket_ms  INTEGER PRIMARY KEY,   -- the start of a 5-minute bucket (UTC-aligned)
    requests   INTEGER NOT NULL,
    served     INTEGER NOT NULL,      -- status 200
    fell_back  INTEGER NOT NULL,      -- served after a failed attempt
    tokens_in  INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL
);

-- kind 'fallback': failed attempts by result (`429`, `5xx`, …) read from the trail;
-- kind 'error': requests that got an error, by outcome (`all_routes_failed`, …).
CREATE TABLE IF NOT EXISTS trouble_rollup (
    bucket_ms INTEGER NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('fallback', 'error')),
    reason    TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (bucket_ms, kind, reason)
);

-- What is already logged is summed once (the request log keeps its retention period).
INSERT OR IGNORE INTO traffic_rollup (bucket_ms, requests, served, fell_back, tokens_in, tokens_out)
SELECT at_ms - at_ms % 300000, COUNT(*), SUM(status = 200), SUM(status = 200 AND attempts > 1),
       COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0)
FROM request_log GROUP BY 1;

-- A trail `route:result,route:result` becomes a JSON array of attempts (json_quote escapes the
-- text, and an escape never holds a comma, so splitting at commas stays valid JSON); an attempt's
-- result is what follows its last ':' (rtrim strips every character but ':' from the end).
INSERT OR IGNORE INTO trouble_rollup (bucket_ms, kind, reason, count)
SELECT l.at_ms - l.at_ms % 300000, 'fallback',
       substr(a.value, length(rtrim(a.value, replace(a.value, ':', ''))) + 1) AS result, COUNT(*)
FROM request_log l, json_each('["' || replace(substr(json_quote(l.trail), 2, length(json_quote(l.trail)) - 2), ',', '","') || '"]') a
WHERE (l.status <> 200 OR l.attempts > 1) AND result NOT IN ('', 'ok')
GROUP BY 1, 3;

INSERT OR IGNORE INTO trouble_rollup (bucket_ms, kind, reason, count)
SELECT at_ms - at_ms % 300000, 'error', outcome, COUNT(*)
FROM request_log WHERE status <> 200 GROUP BY 1, 3;

CREATE TRIGGER IF NOT EXISTS request_log_traffic AFTER INSERT ON request_log
BEGIN
    INSERT INTO traffic_rollup (bucket_ms, requests, served, fell_back, tokens_in, tokens_out)
    VALUES (NEW.at_ms - NEW.at_ms % 300000, 1, NEW.status = 200, NEW.status = 200 AND NEW.attempts > 1,
            COALESCE(NEW.tokens_in, 0), COALESCE(NEW.tokens_out, 0))
    ON CONFLICT (bucket_ms) DO UPDATE SET
        requests = requests + 1, served = served + excluded.served, fell_back = fell_back + excluded.fell_back,
        tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out;
    DELETE FROM traffic_rollup WHERE bucket_ms < NEW.at_ms - 8 * 86400000;
END;

CREATE TRIGGER IF NOT EXISTS request_log_trouble AFTER INSERT ON request_log
WHEN NEW.status <> 200 OR NEW.attempts > 1
BEGIN
    INSERT INTO trouble_rollup (bucket_ms, kind, reason, count)
    SELECT NEW.at_ms - NEW.at_ms % 300000, 'fallback',
           substr(a.value, length(rtrim(a.value, replace(a.value, ':', ''))) + 1) AS result, COUNT(*)
    FROM json_each('["' || replace(substr(json_quote(NEW.trail), 2, length(json_quote(NEW.trail)) - 2), ',', '","') || '"]') a
    WHERE result NOT IN ('', 'ok')
    GROUP BY 3
    ON CONFLICT (bucket_ms, kind, reason) DO UPDATE SET count = count + excluded.count;
    INSERT INTO trouble_rollup (bucket_ms, kind, reason, count)
    SELECT NEW.at_ms - NEW.at_ms % 300000, 'error', NEW.outcome, 1 WHERE NEW.status <> 200
    ON CONFLICT (bucket_ms, kind, reason) DO UPDATE SET count = count + 1;
    DELETE FROM trouble_rollup WHERE bucket_ms < NEW.at_ms - 8 * 86400000;
END;

-- The latest errors, newest first, without walking back through every served request.
CREATE INDEX IF NOT EXISTS request_log_errors ON request_log (at_ms) WHERE status <> 200;
