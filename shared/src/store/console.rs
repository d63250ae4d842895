//! Reads for the web console. Traffic and the reasons for trouble come from the 5-minute rollups
//! that triggers keep as the request log is written (migration 0004), so a page reads a few hundred
//! small rows however busy the day was; the latest errors come from a partial index.

use super::{Store, StoreError};
use crate::time::EpochMs;
use std::collections::BTreeMap;

/// The rollups' resolution: windows asked of them start and end on multiples of this.
pub const ROLLUP_MS: EpochMs = 300_000;

/// The requests of one time bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficBucket {
    /// The bucket's first millisecond.
    pub start_ms: EpochMs,
    pub requests: u64,
    /// Answered with 200.
    pub served: u64,
    /// Served after at least one failed attempt.
    pub fell_back: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// Why requests fell back and failed over a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reasons {
    /// Failed attempts by result (`429`, `5xx`, `timeout`, …), from the requests' trails.
    pub fallbacks: BTreeMap<String, u64>,
    /// Requests that got an error, by outcome (`all_routes_failed`, `quota_exhausted`, …).
    pub errors: BTreeMap<String, u64>,
}

/// A request that was not served, as the status page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRequest {
    pub request_id: String,
    pub at_ms: EpochMs,
    pub requested_model: String,
    pub status: u16,
    pub outcome: String,
    pub error_class: Option<String>,
    pub attempts: u32,
    pub latency_ms: u64,
    pub trail: String,
}

fn count(v: i64) -> u64 {
    v.max(0) as u64
}

impl Store {
    /// Traffic in `[since_ms, until_ms)` summed per bucket of `bucket_ms` (a multiple of
    /// [`ROLLUP_MS`], as is `since_ms`), oldest first; buckets without a request are left out.
    pub async fn traffic_buckets(
        &self,
        since_ms: EpochMs,
        until_ms: EpochMs,
        bucket_ms: EpochMs,
    ) -> Result<Vec<TrafficBucket>, StoreError> {
        let bucket_ms = bucket_ms.max(1);
        let rows: Vec<(i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT (bucket_ms - $1) / $3 AS bucket, CAST(SUM(requests) AS BIGINT), \
                 CAST(SUM(served) AS BIGINT), CAST(SUM(fell_back) AS BIGINT), \
                 CAST(SUM(tokens_in) AS BIGINT), CAST(SUM(tokens_out) AS BIGINT) \
             FROM traffic_rollup WHERE bucket_ms >= $1 AND bucket_ms < $2 GROUP BY bucket ORDER BY bucket",
        )
        .bind(since_ms)
        .bind(until_ms)
        .bind(bucket_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(bucket, requests, served, fell_back, tokens_in, tokens_out)| TrafficBucket {
                    start_ms: since_ms + bucket * bucket_ms,
                    requests: count(requests),
                    served: count(served),
                    fell_back: count(fell_back),
                    tokens_in: count(tokens_in),
                    tokens_out: count(tokens_out),
                },
            )
            .collect())
    }

    /// Why requests fell back or failed in the buckets from `since_ms` on.
    pub async fn trouble_reasons(&self, since_ms: EpochMs) -> Result<Reasons, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, reason, CAST(SUM(count) AS BIGINT) FROM trouble_rollup WHERE bucket_ms >= $1 \
             GROUP BY kind, reason",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut reasons = Reasons::default();
        for (kind, reason, n) in rows {
            let into = if kind == "error" {
                &mut reasons.errors
            } else {
                &mut reasons.fallbacks
            };
            into.insert(reason, count(n));
        }
        Ok(reasons)
    }

    /// The latest requests that were not served, newest first.
    pub async fn recent_failed_requests(
        &self,
        limit: u32,
    ) -> Result<Vec<FailedRequest>, StoreError> {
        type Tuple = (
            String,
            i64,
            String,
            i64,
            String,
            Option<String>,
            i64,
            i64,
            String,
        );
        let rows: Vec<Tuple> = sqlx::query_as(
            "SELECT request_id, at_ms, requested_model, status, outcome, error_class, attempts, \
                 latency_ms, trail \
             FROM request_log WHERE status <> 200 ORDER BY at_ms DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| FailedRequest {
                request_id: r.0,
                at_ms: r.1,
                requested_model: r.2,
                status: r.3.clamp(0, 999) as u16,
                outcome: r.4,
                error_class: r.5,
                attempts: r.6.max(0) as u32,
                latency_ms: count(r.7),
                trail: r.8,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RequestLogRow;
    use crate::store::testing::on_both_backends;

    fn row(id: &str, at_ms: EpochMs, status: u16, attempts: u32, trail: &str) -> RequestLogRow {
        RequestLogRow {
            request_id: id.into(),
            at_ms,
            endpoint: "chat".into(),
            requested_model: "auto".into(),
            route_id: (status == 200).then(|| "p/m".to_string()),
            provider: (status == 200).then(|| "p".to_string()),
            attempts,
            status,
            outcome: if status == 200 {
                "ok"
            } else {
                "all_routes_failed"
            }
            .into(),
            error_class: None,
            latency_ms: 100,
            ttft_ms: None,
            tokens_in: Some(10),
            tokens_out: Some(5),
            stream: false,
            trail: trail.into(),
        }
    }

    on_both_backends! {
        async fn the_rollups_sum_traffic_and_reasons_as_the_log_is_written(store: Store) {
            let day = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000;
            // Route ids may hold ':' and even quotes: the result is what follows the last ':'.
            let odd = r#"or/new:free"x\y"#;
            store
                .insert_request_logs(&[
                    row("a", day + 1_000, 200, 1, "p/m:ok"),
                    row("b", day + 2_000, 200, 2, &format!("{odd}:429,p/m:ok")),
                    row("c", day + ROLLUP_MS + 5, 502, 2, "p/x:5xx,p/m:timeout"),
                    row("d", day + 9 * ROLLUP_MS, 200, 1, "p/m:ok"),
                ])
                .await
                .unwrap();
            let buckets = store
                .traffic_buckets(day, day + 9 * ROLLUP_MS, 3 * ROLLUP_MS)
                .await
                .unwrap();
            assert_eq!(
                buckets,
                [TrafficBucket {
                    start_ms: day,
                    requests: 3,
                    served: 2,
                    fell_back: 1,
                    tokens_in: 30,
                    tokens_out: 15,
                }],
                "empty buckets and rows past the end are left out"
            );
            // A later batch adds to the buckets already written.
            store
                .insert_request_logs(&[row("e", day + 3_000, 200, 1, "p/m:ok")])
                .await
                .unwrap();
            let first = store.traffic_buckets(day, day + ROLLUP_MS, ROLLUP_MS).await.unwrap();
            assert_eq!((first[0].requests, first[0].served, first[0].tokens_in), (3, 3, 30));
            let all = store.trouble_reasons(day).await.unwrap();
            let expected = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
                pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
            };
            assert_eq!(
                all.fallbacks,
                expected(&[("429", 1), ("5xx", 1), ("timeout", 1)])
            );
            assert_eq!(all.errors, expected(&[("all_routes_failed", 1)]));
            let later = store.trouble_reasons(day + ROLLUP_MS).await.unwrap();
            assert_eq!(later.fallbacks, expected(&[("5xx", 1), ("timeout", 1)]));

            let failed = store.recent_failed_requests(10).await.unwrap();
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].request_id, "c");

            // Eight days on, a batch takes the oldest buckets away.
            let week_on = day + 8 * 86_400_000 + 2 * ROLLUP_MS;
            store
                .insert_request_logs(&[row("f", week_on, 200, 1, "p/m:ok")])
                .await
                .unwrap();
            let kept = store.traffic_buckets(day, week_on + ROLLUP_MS, ROLLUP_MS).await.unwrap();
            let starts: Vec<EpochMs> = kept.iter().map(|b| b.start_ms).collect();
            assert_eq!(starts, [day + 9 * ROLLUP_MS, week_on], "the first two buckets are gone");
    }
    }
}
