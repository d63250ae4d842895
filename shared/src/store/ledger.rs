//! The quota ledger: one row per reserved upstream request, with running totals per second and
//! per minute kept by triggers (migration 0005). A reservation checks every limit and takes its
//! share in one atomic statement, so gateways sharing the file never overspend a key, and its cost
//! does not grow with the day's traffic.

use super::ledger_batch::{LedgerOp, OwnedAsk};
use super::{Store, StoreError};
use crate::config::Limits;
use crate::quota::window::Usage;
use crate::time::EpochMs;

/// One reservation to take: a request and `tokens` on (provider, key, route), if every limit has room.
#[derive(Clone, Debug)]
pub struct ReservationAsk<'a> {
    pub provider: &'a str,
    pub key_id: &'a str,
    pub route_id: &'a str,
    pub tokens: u64,
    pub now: EpochMs,
    /// When an unsettled reservation stops counting (its process is presumed gone).
    pub expires_ms: EpochMs,
    pub day_start: EpochMs,
    /// The key's limits across the provider's routes.
    pub key_limits: Limits,
    /// The key's limits on this route.
    pub route_limits: Limits,
}

pub(super) fn limit(value: Option<u64>) -> Option<i64> {
    value.map(|v| v.min(i64::MAX as u64) as i64)
}

/// What (provider ?1, key ?2) has used since `$since` (exclusive, in ms) over `$scope` ('*' or a
/// route id, an SQL expression): the one-second buckets wholly after it, the ledger rows of the
/// second it falls in, less the reservations that expired unsettled (their process died).
macro_rules! requests_since {
    ($since:literal, $scope:literal, $now:literal) => {
        concat!(
            "((SELECT COALESCE(SUM(b.requests), 0) FROM quota_buckets b WHERE b.provider = ?1 AND b.key_id = ?2",
            " AND b.scope = ", $scope, " AND b.grain = 1000 AND b.start_ms > ", $since, ")",
            " + (SELECT COUNT(*) FROM quota_ledger l WHERE l.provider = ?1 AND l.key_id = ?2",
            " AND (", $scope, " = '*' OR l.route_id = ", $scope, ")",
            " AND l.at_ms > ", $since, " AND l.at_ms < ", $since, " - ", $since, " % 1000 + 1000)",
            " - (SELECT COUNT(*) FROM quota_ledger l WHERE l.provider = ?1 AND l.key_id = ?2",
            " AND (", $scope, " = '*' OR l.route_id = ", $scope, ")",
            " AND l.settled = 0 AND l.expires_ms <= ", $now, " AND l.at_ms > ", $since, "))"
        )
    };
}

/// Usage of (provider ?1, key ?2) at ?NOW with the day starting at ?DAY, as rows of
/// `(is_key, minute_requests, minute_tokens, day_requests, day_tokens)` to be summed: the key
/// across routes (`is_key` 1) and on route ?ROUTE (`is_key` 0). Buckets hold every reservation;
/// the partial second at the minute's start comes from the ledger; expired unsettled reservations
/// are subtracted.
macro_rules! usage_parts {
    ($route:literal, $now:literal, $day:literal) => {
        concat!(
            "SELECT scope = '*', SUM(requests), SUM(tokens), 0, 0 FROM quota_buckets
              WHERE provider = ?1 AND key_id = ?2 AND scope IN ('*', ", $route, ")
                AND grain = 1000 AND start_ms > ", $now, " - 60000
              GROUP BY scope
             UNION ALL
             SELECT scope = '*', 0, 0, SUM(requests), SUM(tokens) FROM quota_buckets
              WHERE provider = ?1 AND key_id = ?2 AND scope IN ('*', ", $route, ")
                AND grain = 60000 AND start_ms >= ", $day, "
              GROUP BY scope
             UNION ALL
             SELECT 1, COUNT(*), SUM(tokens), 0, 0 FROM quota_ledger
              WHERE provider = ?1 AND key_id = ?2
                AND at_ms > ", $now, " - 60000 AND at_ms < ", $now, " - 60000 - (", $now, " - 60000) % 1000 + 1000
             UNION ALL
             SELECT 0, COUNT(*), SUM(tokens), 0, 0 FROM quota_ledger
              WHERE provider = ?1 AND key_id = ?2 AND route_id = ", $route, "
                AND at_ms > ", $now, " - 60000 AND at_ms < ", $now, " - 60000 - (", $now, " - 60000) % 1000 + 1000
             UNION ALL
             SELECT 1, -SUM(at_ms > ", $now, " - 60000), -SUM(CASE WHEN at_ms > ", $now, " - 60000 THEN tokens ELSE 0 END),
                    -SUM(at_ms >= ", $day, "), -SUM(CASE WHEN at_ms >= ", $day, " THEN tokens ELSE 0 END)
               FROM quota_ledger WHERE provider = ?1 AND key_id = ?2 AND settled = 0 AND expires_ms <= ", $now, "
             UNION ALL
             SELECT 0, -SUM(at_ms > ", $now, " - 60000), -SUM(CASE WHEN at_ms > ", $now, " - 60000 THEN tokens ELSE 0 END),
                    -SUM(at_ms >= ", $day, "), -SUM(CASE WHEN at_ms >= ", $day, " THEN tokens ELSE 0 END)
               FROM quota_ledger WHERE provider = ?1 AND key_id = ?2 AND +route_id = ", $route, "
                AND settled = 0 AND expires_ms <= ", $now
        )
    };
}

/// Takes a reservation when every limit has room: ?1 provider, ?2 key, ?3 route, ?4 now,
/// ?5 tokens, ?6 expiry, ?7–?10 the key's rpm/tpm/rpd/tpd, ?11 day start, ?12–?15 the route's.
pub(super) const RESERVE: &str = concat!(
            "WITH parts (is_key, mr, mt, dr, dt) AS (",
            usage_parts!("?3", "?4", "?11"),
            "), used AS (
                 SELECT COALESCE(SUM(CASE WHEN is_key THEN mr END), 0) AS kmr,
                        COALESCE(SUM(CASE WHEN is_key THEN mt END), 0) AS kmt,
                        COALESCE(SUM(CASE WHEN is_key THEN dr END), 0) AS kdr,
                        COALESCE(SUM(CASE WHEN is_key THEN dt END), 0) AS kdt,
                        COALESCE(SUM(CASE WHEN NOT is_key THEN mr END), 0) AS rmr,
                        COALESCE(SUM(CASE WHEN NOT is_key THEN mt END), 0) AS rmt,
                        COALESCE(SUM(CASE WHEN NOT is_key THEN dr END), 0) AS rdr,
                        COALESCE(SUM(CASE WHEN NOT is_key THEN dt END), 0) AS rdt
                   FROM parts)
             INSERT INTO quota_ledger (provider, key_id, route_id, at_ms, tokens, settled, expires_ms)
             SELECT ?1, ?2, ?3, ?4, ?5, 0, ?6 FROM used
              WHERE (?7 IS NULL OR kmr < ?7) AND (?8 IS NULL OR kmt + ?5 <= ?8)
                AND (?9 IS NULL OR kdr < ?9) AND (?10 IS NULL OR kdt + ?5 <= ?10)
                AND (?12 IS NULL OR rmr < ?12) AND (?13 IS NULL OR rmt + ?5 <= ?13)
                AND (?14 IS NULL OR rdr < ?14) AND (?15 IS NULL OR rdt + ?5 <= ?15)
                AND NOT EXISTS (SELECT 1 FROM quota_windows h
                        WHERE h.provider = ?1 AND h.key_id = ?2 AND h.scope IN ('*', ?3) AND h.window = 'minute'
                          AND h.reset_at_ms > ?4 AND h.remaining_requests IS NOT NULL
                          AND ",
            requests_since!("h.window_start_ms", "h.scope", "?4"),
            " >= h.remaining_requests)
             RETURNING id"
);

impl Store {
    /// Reserves in one statement; `Some(id)` when granted, `None` when a limit (or what the provider
    /// last said is left) has no room.
    pub async fn reserve(&self, ask: &ReservationAsk<'_>) -> Result<Option<i64>, StoreError> {
        self.ledger
            .submit(LedgerOp::Reserve(Box::new(OwnedAsk {
                provider: ask.provider.to_string(),
                key_id: ask.key_id.to_string(),
                route_id: ask.route_id.to_string(),
                tokens: ask.tokens,
                now: ask.now,
                expires_ms: ask.expires_ms,
                day_start: ask.day_start,
                key_limits: ask.key_limits,
                route_limits: ask.route_limits,
            })))
            .await
    }

    /// Replaces a reservation's estimate with the real usage.
    pub async fn settle(&self, id: i64, tokens: u64) -> Result<(), StoreError> {
        self.ledger
            .submit(LedgerOp::Settle { id, tokens })
            .await
            .map(|_| ())
    }

    /// Gives a reservation back (the provider did not count the request).
    pub async fn release(&self, id: i64) -> Result<(), StoreError> {
        self.ledger
            .submit(LedgerOp::Release { id })
            .await
            .map(|_| ())
    }

    /// What a key has used: across the provider (`route_id: None`) or on one route.
    pub async fn usage(
        &self,
        provider: &str,
        key_id: &str,
        route_id: Option<&str>,
        now: EpochMs,
        day_start: EpochMs,
    ) -> Result<Usage, StoreError> {
        let row: (i64, i64, Option<i64>, i64, i64) = sqlx::query_as(concat!(
            "WITH parts (is_key, mr, mt, dr, dt) AS (",
            usage_parts!("?5", "?3", "?4"),
            ")
             SELECT COALESCE(SUM(mr), 0), COALESCE(SUM(mt), 0),
                    (SELECT at_ms FROM quota_ledger
                      WHERE provider = ?1 AND key_id = ?2 AND (?5 IS NULL OR route_id = ?5)
                        AND at_ms > ?3 - 60000 AND (settled = 1 OR expires_ms > ?3)
                      ORDER BY at_ms LIMIT 1),
                    COALESCE(SUM(dr), 0), COALESCE(SUM(dt), 0)
               FROM parts WHERE is_key = (?5 IS NULL)"
        ))
        .bind(provider)
        .bind(key_id)
        .bind(now)
        .bind(day_start)
        .bind(route_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Usage {
            minute_requests: row.0.max(0) as u64,
            minute_tokens: row.1.max(0) as u64,
            minute_oldest_ms: row.2,
            day_requests: row.3.max(0) as u64,
            day_tokens: row.4.max(0) as u64,
        })
    }

    /// The end of what the provider said is left, when it has been used up since it was said.
    pub async fn provider_hint_blocks_until(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        now: EpochMs,
    ) -> Result<Option<EpochMs>, StoreError> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(concat!(
            "SELECT MAX(h.reset_at_ms) FROM quota_windows h
             WHERE h.provider = ?1 AND h.key_id = ?2 AND h.scope IN ('*', ?3) AND h.window = 'minute'
               AND h.reset_at_ms > ?4 AND h.remaining_requests IS NOT NULL
               AND ",
            requests_since!("h.window_start_ms", "h.scope", "?4"),
            " >= h.remaining_requests"
        ))
        .bind(provider)
        .bind(key_id)
        .bind(route_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(until,)| until))
    }

    /// Drops rows no window can count any more, and reservations whose process never settled them.
    pub async fn prune_ledger(&self, now: EpochMs) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM quota_ledger WHERE at_ms < ?1 - 2 * 86400000 OR (settled = 0 AND expires_ms <= ?1)",
        )
        .bind(now)
        .execute(&self.writer)
        .await?;
        // Emptied by the deletes above, or older than any window.
        sqlx::query(
            "DELETE FROM quota_buckets WHERE requests <= 0 OR start_ms < ?1 - 2 * 86400000",
        )
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use std::time::Duration;

    /// Every ledger lookup of a reservation is bounded by time (or by the few unsettled rows), so
    /// its cost does not grow with the day's traffic.
    #[tokio::test]
    async fn a_reservation_reads_only_recent_buckets_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("plan.db"), Duration::from_secs(5))
            .await
            .unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {}", super::RESERVE);
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain))
            .bind("p")
            .bind("k")
            .bind("p/m")
            .bind(1_000_000_i64)
            .bind(1_i64)
            .bind(2_000_000_i64);
        for _ in 7..=15 {
            query = query.bind(1_i64);
        }
        let plan = query.fetch_all(&store.pool).await.unwrap();
        let reads: Vec<&str> = plan
            .iter()
            .map(|(_, _, _, detail)| detail.as_str())
            .filter(|d| {
                d.contains("quota_ledger") || d.contains("quota_buckets") || d.contains(" b ")
            })
            .collect();
        assert!(!reads.is_empty());
        for read in reads {
            let bounded = read.contains("at_ms>")
                || read.contains("start_ms>")
                || read.contains("quota_ledger_unsettled");
            assert!(
                bounded && !read.starts_with("SCAN"),
                "unbounded read: {read}"
            );
        }
    }
}
