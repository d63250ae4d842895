-- The traffic rollup is summed once per request-log batch by the store (request_log.rs), one
-- upsert per 5-minute bucket, instead of a trigger's upsert and delete per row: at a few thousand
-- requests a second that trigger was a tenth of the gateway's CPU. Trouble stays a trigger: it
-- fires only for requests that failed or fell back.
DROP TRIGGER IF EXISTS request_log_traffic;
