//! The quota ledger's statements. A row is a lease: a block of requests and tokens one process took
//! from a key's windows (migration 0006). What a row counts depends on its state:
//! - live (unsettled, `expires_ms` still ahead): its whole block, `requests` and `tokens`;
//! - expired unsettled (its process is gone): what the holder may have handed out,
//!   `committed_requests` and `committed_tokens`;
//! - settled: its exact use, written into `requests` and `tokens`.
//!
//! The running totals (`quota_buckets`, kept by triggers) hold every row's `requests` and `tokens`;
//! the few expired unsettled rows are corrected by subtracting their uncommitted part, through the
//! partial index of unsettled rows. A read is therefore bounded by time (60 one-second buckets,
//! 1,440 one-minute buckets, the rows of one boundary second), not by the day's traffic.

/// What (provider $1, key $2) has taken since `$since` (exclusive, in ms) over `$scope` ('*' or
/// a route id, an SQL expression), to hold against what the provider said was left at `$since`:
/// the leases taken after it (a lease taken before was already in the provider's count as far as
/// it had been used; its holder caps the rest in memory), live ones whole, expired unsettled ones
/// at their committed mark, settled ones at their use.
macro_rules! requests_since {
    ($since:literal, $scope:literal, $now:literal) => {
        concat!(
            "(SELECT COALESCE(SUM(CASE WHEN l.settled = 0 AND l.expires_ms <= ",
            $now,
            " THEN l.committed_requests ELSE l.requests END), 0)",
            " FROM quota_ledger l WHERE l.provider = $1 AND l.key_id = $2",
            " AND (",
            $scope,
            " = '*' OR l.route_id = ",
            $scope,
            ")",
            " AND l.at_ms > ",
            $since,
            " AND l.granted_ms > ",
            $since,
            ")"
        )
    };
}

/// What (provider $1, key $2) counts at `$now` with the day starting at `$day` and the calendar
/// month at `$month`, as rows of `(is_key, minute_requests, minute_tokens, day_requests,
/// day_tokens, month_requests, month_tokens, window_requests, window_tokens, window_oldest)` to
/// be summed (the oldest taken by MIN): the key across routes (`is_key` 1) and on route `$route`
/// (`is_key` 0). The month is read from the hourly buckets (a month starts on a whole hour), at
/// most 744 of them a scope. Each scope's rolling window is its buckets of grain `$kgrain`
/// (`$rgrain` for the route) from `$kstart` (`$rstart`), a start on that grain.
macro_rules! usage_parts {
    ($route:literal, $now:literal, $day:literal, $month:literal, $route_col:literal,
     $kgrain:literal, $kstart:literal, $rgrain:literal, $rstart:literal) => {
        concat!(
            "SELECT CASE WHEN scope = '*' THEN 1 ELSE 0 END, SUM(requests), SUM(tokens), 0, 0, 0, 0, 0, 0,
                    CAST(NULL AS BIGINT)
               FROM quota_buckets
              WHERE provider = $1 AND key_id = $2 AND scope IN ('*', ", $route, ")
                AND grain = 1000 AND start_ms > ", $now, " - 60000
              GROUP BY scope
             UNION ALL
             SELECT CASE WHEN scope = '*' THEN 1 ELSE 0 END, 0, 0, SUM(requests), SUM(tokens), 0, 0, 0, 0, NULL
               FROM quota_buckets
              WHERE provider = $1 AND key_id = $2 AND scope IN ('*', ", $route, ")
                AND grain = 60000 AND start_ms >= ", $day, "
              GROUP BY scope
             UNION ALL
             SELECT CASE WHEN scope = '*' THEN 1 ELSE 0 END, 0, 0, 0, 0, SUM(requests), SUM(tokens), 0, 0, NULL
               FROM quota_buckets
              WHERE provider = $1 AND key_id = $2 AND scope IN ('*', ", $route, ")
                AND grain = 3600000 AND start_ms >= ", $month, "
              GROUP BY scope
             UNION ALL
             SELECT 1, 0, 0, 0, 0, 0, 0, SUM(requests), SUM(tokens),
                    MIN(CASE WHEN requests > 0 OR tokens > 0 THEN start_ms END)
               FROM quota_buckets
              WHERE provider = $1 AND key_id = $2 AND scope = '*'
                AND grain = ", $kgrain, " AND start_ms >= ", $kstart, "
             UNION ALL
             SELECT 0, 0, 0, 0, 0, 0, 0, SUM(requests), SUM(tokens),
                    MIN(CASE WHEN requests > 0 OR tokens > 0 THEN start_ms END)
               FROM quota_buckets
              WHERE provider = $1 AND key_id = $2 AND scope = ", $route, "
                AND grain = ", $rgrain, " AND start_ms >= ", $rstart, "
             UNION ALL
             SELECT 1, SUM(requests), SUM(tokens), 0, 0, 0, 0, 0, 0, NULL FROM quota_ledger
              WHERE provider = $1 AND key_id = $2
                AND at_ms > ", $now, " - 60000 AND at_ms < ", $now, " - 60000 - (", $now, " - 60000) % 1000 + 1000
             UNION ALL
             SELECT 0, SUM(requests), SUM(tokens), 0, 0, 0, 0, 0, 0, NULL FROM quota_ledger
              WHERE provider = $1 AND key_id = $2 AND route_id = ", $route, "
                AND at_ms > ", $now, " - 60000 AND at_ms < ", $now, " - 60000 - (", $now, " - 60000) % 1000 + 1000
             UNION ALL
             SELECT 1,
                    -SUM(CASE WHEN at_ms > ", $now, " - 60000 THEN requests - committed_requests ELSE 0 END),
                    -SUM(CASE WHEN at_ms > ", $now, " - 60000 THEN tokens - committed_tokens ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $day, " THEN requests - committed_requests ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $day, " THEN tokens - committed_tokens ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $month, " THEN requests - committed_requests ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $month, " THEN tokens - committed_tokens ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $kstart, " THEN requests - committed_requests ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $kstart, " THEN tokens - committed_tokens ELSE 0 END),
                    NULL
               FROM quota_ledger WHERE provider = $1 AND key_id = $2 AND settled = 0 AND expires_ms <= ", $now, "
             UNION ALL
             SELECT 0,
                    -SUM(CASE WHEN at_ms > ", $now, " - 60000 THEN requests - committed_requests ELSE 0 END),
                    -SUM(CASE WHEN at_ms > ", $now, " - 60000 THEN tokens - committed_tokens ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $day, " THEN requests - committed_requests ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $day, " THEN tokens - committed_tokens ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $month, " THEN requests - committed_requests ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $month, " THEN tokens - committed_tokens ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $rstart, " THEN requests - committed_requests ELSE 0 END),
                    -SUM(CASE WHEN at_ms >= ", $rstart, " THEN tokens - committed_tokens ELSE 0 END),
                    NULL
               FROM quota_ledger WHERE provider = $1 AND key_id = $2 AND ", $route_col, " = ", $route, "
                AND settled = 0 AND expires_ms <= ", $now
        )
    };
}

/// The GRANT statement for one engine: `$least` is the engine's scalar minimum (`MIN` in SQLite,
/// `LEAST` in PostgreSQL), `$route_col` the route column as the engine's planner should see it.
macro_rules! grant {
    ($least:literal, $route_col:literal) => {
        concat!(
            "WITH parts (is_key, mr, mt, dr, dt, mor, mot, wr, wt, wo) AS (",
            usage_parts!("$3", "$4", "$13", "$22", $route_col, "$27", "$28", "$29", "$30"),
            "), used AS (
         SELECT COALESCE(SUM(CASE WHEN is_key = 1 THEN mr END), 0) AS kmr,
                COALESCE(SUM(CASE WHEN is_key = 1 THEN mor END), 0) AS kmor,
                COALESCE(SUM(CASE WHEN is_key = 1 THEN mot END), 0) AS kmot,
                COALESCE(SUM(CASE WHEN is_key = 0 THEN mor END), 0) AS rmor,
                COALESCE(SUM(CASE WHEN is_key = 0 THEN mot END), 0) AS rmot,
                COALESCE(SUM(CASE WHEN is_key = 1 THEN wr END), 0) AS kwr,
                COALESCE(SUM(CASE WHEN is_key = 1 THEN wt END), 0) AS kwt,
                COALESCE(SUM(CASE WHEN is_key = 0 THEN wr END), 0) AS rwr,
                COALESCE(SUM(CASE WHEN is_key = 0 THEN wt END), 0) AS rwt,
                COALESCE(SUM(CASE WHEN is_key = 1 THEN mt END), 0) AS kmt,
                COALESCE(SUM(CASE WHEN is_key = 1 THEN dr END), 0) AS kdr,
                COALESCE(SUM(CASE WHEN is_key = 1 THEN dt END), 0) AS kdt,
                COALESCE(SUM(CASE WHEN is_key = 0 THEN mr END), 0) AS rmr,
                COALESCE(SUM(CASE WHEN is_key = 0 THEN mt END), 0) AS rmt,
                COALESCE(SUM(CASE WHEN is_key = 0 THEN dr END), 0) AS rdr,
                COALESCE(SUM(CASE WHEN is_key = 0 THEN dt END), 0) AS rdt
           FROM parts),
     hinted AS (
         SELECT MIN(h.remaining_requests - ",
            requests_since!("h.window_start_ms", "h.scope", "$4"),
            ") AS room FROM quota_windows h
          WHERE h.provider = $1 AND h.key_id = $2 AND h.scope IN ('*', $3) AND h.\"window\" = 'minute'
            AND h.reset_at_ms > $4 AND h.remaining_requests IS NOT NULL),
     granted AS (
         SELECT CAST(", $least, "($5, COALESCE($9 - kmr, $5), COALESCE($11 - kdr, $5),
                    COALESCE($14 - rmr, $5), COALESCE($16 - rdr, $5),
                    COALESCE($23 - kmor, $5), COALESCE($25 - rmor, $5),
                    COALESCE($31 - kwr, $5), COALESCE($33 - rwr, $5),
                    COALESCE((SELECT room FROM hinted), $5)) AS BIGINT) AS r,
                CAST(", $least, "($6, COALESCE($10 - kmt, $6), COALESCE($12 - kdt, $6),
                    COALESCE($15 - rmt, $6), COALESCE($17 - rdt, $6),
                    COALESCE($24 - kmot, $6), COALESCE($26 - rmot, $6),
                    COALESCE($32 - kwt, $6), COALESCE($34 - rwt, $6)) AS BIGINT) AS t
           FROM used)
     INSERT INTO quota_ledger (provider, key_id, route_id, at_ms, requests, tokens,
            committed_requests, committed_tokens, settled, expires_ms, holder, seq, granted_ms)
     SELECT $1, $2, $3, $8, r, t, ", $least, "($18, r), ", $least, "($19, t), 0, $8, $20, $21, $4
       FROM granted
      WHERE r >= 1 AND t >= $7
     ON CONFLICT DO NOTHING
     RETURNING id, requests, tokens, committed_requests, committed_tokens"
        )
    };
}

/// A statement in each engine's dialect (the same text where they agree).
#[derive(Clone, Copy, Debug)]
pub(super) struct Sql {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Sql {
    pub const fn both(text: &'static str) -> Self {
        Sql {
            sqlite: text,
            postgres: text,
        }
    }

    pub fn text(&self, backend: super::Backend) -> &'static str {
        match backend {
            super::Backend::Sqlite => self.sqlite,
            super::Backend::Postgres => self.postgres,
        }
    }
}

/// Takes a lease of at most $5 requests and $6 tokens, as much of it as every limit has room for,
/// and at least one request and $7 tokens — or nothing. One statement, so processes sharing a
/// SQLite file never overspend a key (SQLite runs one writer at a time); on PostgreSQL the batch
/// that runs it first holds the key's advisory lock (`ledger_batch.rs`), so grants of one key on
/// every host run one after another, each seeing the last one committed. Parameters: $1 provider,
/// $2 key, $3 route, $4 now, $8 the lease's expiry (its date too: a request handed out from it
/// counts in the sliding minute at least as long as it really is in it), $9–$12 the key's
/// rpm/tpm/rpd/tpd, $13 day start, $14–$17 the route's, $18–$19 the committed mark to start with,
/// $20 holder, $21 its sequence number (a second try of the same lease is ignored), $22 the
/// calendar month's start, $23–$24 the key's rpmonth/tpmonth, $25–$26 the route's, $27–$28 the
/// key's rolling window (bucket grain, first bucket), $29–$30 the route's, $31–$32 the key's
/// rpwindow/tpwindow, $33–$34 the route's.
pub(super) const GRANT: Sql = Sql {
    sqlite: grant!("MIN", "+route_id"),
    postgres: grant!("LEAST", "route_id"),
};

/// A lease this holder already took under this sequence number (a second try of one write).
pub(super) const GRANTED_BEFORE: Sql = Sql::both(
    "SELECT id, requests, tokens, committed_requests, committed_tokens
       FROM quota_ledger WHERE holder = $1 AND seq = $2",
);

/// Raises a live lease's committed mark (never lowers it, never past its block).
pub(super) const COMMIT: Sql = Sql {
    sqlite: "UPDATE quota_ledger
        SET committed_requests = MAX(committed_requests, MIN($2, requests)),
            committed_tokens = MAX(committed_tokens, MIN($3, tokens))
      WHERE id = $1 AND settled = 0",
    postgres: "UPDATE quota_ledger
        SET committed_requests = GREATEST(committed_requests, LEAST($2, requests)),
            committed_tokens = GREATEST(committed_tokens, LEAST($3, tokens))
      WHERE id = $1 AND settled = 0",
};

/// Seals a lease whose every request is handed out: dated at its last hand-out (no request from it
/// is later), its mark at what was handed out. It still counts its block until settled.
pub(super) const SEAL: Sql = Sql {
    sqlite: "UPDATE quota_ledger
        SET at_ms = $2,
            committed_requests = MAX(committed_requests, MIN($3, requests)),
            committed_tokens = MAX(committed_tokens, MIN($4, tokens))
      WHERE id = $1 AND settled = 0",
    postgres: "UPDATE quota_ledger
        SET at_ms = $2,
            committed_requests = GREATEST(committed_requests, LEAST($3, requests)),
            committed_tokens = GREATEST(committed_tokens, LEAST($4, tokens))
      WHERE id = $1 AND settled = 0",
};

/// Settles a lease with its exact use, dated at its last hand-out.
pub(super) const CLOSE: Sql = Sql::both(
    "UPDATE quota_ledger
        SET requests = $2, tokens = $3, at_ms = $4, committed_requests = $2, committed_tokens = $3,
            settled = 1
      WHERE id = $1",
);

/// A lease nothing was handed out from: it goes.
pub(super) const DROP_UNUSED: Sql = Sql::both("DELETE FROM quota_ledger WHERE id = $1");

/// Corrects a settled lease once requests that were in flight at its close end.
pub(super) const ADJUST: Sql = Sql {
    sqlite: "UPDATE quota_ledger
        SET requests = MAX(0, requests + $2), tokens = MAX(0, tokens + $3),
            committed_requests = MAX(0, requests + $2), committed_tokens = MAX(0, tokens + $3)
      WHERE id = $1 AND settled = 1",
    postgres: "UPDATE quota_ledger
        SET requests = GREATEST(0, requests + $2), tokens = GREATEST(0, tokens + $3),
            committed_requests = GREATEST(0, requests + $2),
            committed_tokens = GREATEST(0, tokens + $3)
      WHERE id = $1 AND settled = 1",
};

/// Requests sent without a lease while the store did not answer, written once it does.
pub(super) const UNRESERVED: Sql = Sql::both(
    "INSERT INTO quota_ledger (provider, key_id, route_id,
            at_ms, requests, tokens, committed_requests, committed_tokens, settled, expires_ms, holder, seq,
            granted_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $5, $6, 1, $4, $7, $8, $4)
     ON CONFLICT DO NOTHING",
);

/// What a key has used over one scope, for one engine: $1 provider, $2 key, $3 now, $4 day
/// start, $5 route or NULL, $6 the calendar month's start, $7–$8 the scope's rolling window
/// (bucket grain, first bucket).
macro_rules! usage {
    ($route_col:literal) => {
        concat!(
            "WITH parts (is_key, mr, mt, dr, dt, mor, mot, wr, wt, wo) AS (",
            usage_parts!("$5", "$3", "$4", "$6", $route_col, "$7", "$8", "$7", "$8"),
            ")
     SELECT CAST(COALESCE(SUM(mr), 0) AS BIGINT), CAST(COALESCE(SUM(mt), 0) AS BIGINT),
            (SELECT at_ms FROM quota_ledger
              WHERE provider = $1 AND key_id = $2 AND ($5 IS NULL OR route_id = $5)
                AND at_ms > $3 - 60000 AND requests > 0
                AND (settled = 1 OR expires_ms > $3 OR committed_requests > 0)
              ORDER BY at_ms LIMIT 1),
            CAST(COALESCE(SUM(dr), 0) AS BIGINT), CAST(COALESCE(SUM(dt), 0) AS BIGINT),
            CAST(COALESCE(SUM(mor), 0) AS BIGINT), CAST(COALESCE(SUM(mot), 0) AS BIGINT),
            CAST(COALESCE(SUM(wr), 0) AS BIGINT), CAST(COALESCE(SUM(wt), 0) AS BIGINT),
            CAST(MIN(wo) AS BIGINT)
       FROM parts WHERE is_key = CASE WHEN $5 IS NULL THEN 1 ELSE 0 END"
        )
    };
}

pub(super) const USAGE: Sql = Sql {
    sqlite: usage!("+route_id"),
    postgres: usage!("route_id"),
};

/// How many other processes hold a live lease on a key: $1 provider, $2 key, $3 now, $4 holder.
pub(super) const OTHER_HOLDERS: Sql = Sql::both(
    "SELECT COUNT(DISTINCT holder) FROM quota_ledger
      WHERE provider = $1 AND key_id = $2 AND settled = 0 AND at_ms > $3 AND expires_ms > $3
        AND holder IS DISTINCT FROM $4",
);

/// The end of what the provider said is left, when it has been used up since it was said.
pub(super) const HINT_BLOCKS_UNTIL: Sql = Sql::both(concat!(
    "SELECT MAX(h.reset_at_ms) FROM quota_windows h
     WHERE h.provider = $1 AND h.key_id = $2 AND h.scope IN ('*', $3) AND h.\"window\" = 'minute'
       AND h.reset_at_ms > $4 AND h.remaining_requests IS NOT NULL
       AND ",
    requests_since!("h.window_start_ms", "h.scope", "$4"),
    " >= h.remaining_requests"
));

/// Leases whose process never came back to settle them settle at their committed mark, a bounded
/// batch at a time: $1 the moment before which an expired lease is left to its holder no longer.
pub(super) const SETTLE_STRANDED: Sql = Sql::both(
    "UPDATE quota_ledger
        SET requests = committed_requests, tokens = committed_tokens, settled = 1
      WHERE id IN (SELECT id FROM quota_ledger WHERE settled = 0 AND expires_ms <= $1 LIMIT $2)",
);

/// Settled rows older than the minute and day windows, a bounded batch at a time. The hourly
/// buckets keep counting them for the month: the triggers take a deleted row off those only while
/// it is unsettled (a lease dropped unused).
pub(super) const DELETE_OLD_ROWS: Sql = Sql::both(
    "DELETE FROM quota_ledger
      WHERE id IN (SELECT id FROM quota_ledger
                    WHERE at_ms < $1 - 2 * 86400000 AND settled = 1 LIMIT $2)",
);

/// Buckets emptied by settles and deletes, or older than their windows (seconds and minutes
/// after two days, hours after 32: 2,764,800,000 ms, written out since `32 * 86400000` overflows
/// PostgreSQL's 32-bit integer arithmetic), a bounded batch at a time.
pub(super) const DELETE_OLD_BUCKETS: Sql = Sql::both(
    "DELETE FROM quota_buckets
      WHERE (provider, key_id, scope, grain, start_ms) IN (
            SELECT provider, key_id, scope, grain, start_ms FROM quota_buckets
             WHERE (requests <= 0 AND tokens <= 0)
                OR (grain < 3600000 AND start_ms < $1 - 2 * 86400000)
                OR start_ms < $1 - 2764800000
             LIMIT $2)",
);
