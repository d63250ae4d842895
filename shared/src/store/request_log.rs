//! The request log: one row per client request, written in batches.

use super::console::ROLLUP_MS;
use super::{Backend, Store, StoreError, sql_int};
use crate::time::EpochMs;
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Clone, Debug, PartialEq)]
pub struct RequestLogRow {
    pub request_id: String,
    pub at_ms: EpochMs,
    pub endpoint: String,
    pub requested_model: String,
    pub route_id: Option<String>,
    pub provider: Option<String>,
    pub attempts: u32,
    pub status: u16,
    pub outcome: String,
    pub error_class: Option<String>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub stream: bool,
    pub trail: String,
}

/// The columns one request-log row binds.
const LOG_COLUMNS: usize = 16;
/// The statement sizes a batch is cut into, largest first (64 rows bind 1,024 values, far under
/// either engine's limit).
const LOG_STATEMENT_ROWS: [usize; 4] = [64, 16, 4, 1];
/// How long the console's traffic rollup keeps a bucket.
const TRAFFIC_KEPT_MS: EpochMs = 8 * 86_400_000;

/// Adds one batch's sums to a 5-minute bucket of the console's traffic rollup.
const ADD_TRAFFIC: &str = "INSERT INTO traffic_rollup \
         (bucket_ms, requests, served, fell_back, tokens_in, tokens_out) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (bucket_ms) DO UPDATE SET \
         requests = traffic_rollup.requests + excluded.requests, \
         served = traffic_rollup.served + excluded.served, \
         fell_back = traffic_rollup.fell_back + excluded.fell_back, \
         tokens_in = traffic_rollup.tokens_in + excluded.tokens_in, \
         tokens_out = traffic_rollup.tokens_out + excluded.tokens_out";

/// One bucket's share of a batch: what the console's traffic chart sums.
#[derive(Default)]
struct Traffic {
    requests: i64,
    served: i64,
    fell_back: i64,
    tokens_in: i64,
    tokens_out: i64,
}

/// The batch summed per 5-minute bucket (`console::ROLLUP_MS`), oldest first.
fn traffic_of(rows: &[RequestLogRow]) -> BTreeMap<EpochMs, Traffic> {
    let mut buckets: BTreeMap<EpochMs, Traffic> = BTreeMap::new();
    for row in rows {
        let sum = buckets
            .entry(row.at_ms - row.at_ms.rem_euclid(ROLLUP_MS))
            .or_default();
        let served = row.status == 200;
        sum.requests += 1;
        sum.served += i64::from(served);
        sum.fell_back += i64::from(served && row.attempts > 1);
        sum.tokens_in = sum
            .tokens_in
            .saturating_add(sql_int(row.tokens_in.unwrap_or(0)));
        sum.tokens_out = sum
            .tokens_out
            .saturating_add(sql_int(row.tokens_out.unwrap_or(0)));
    }
    buckets
}

impl Store {
    /// Inserts a batch in one transaction, in statements of a few fixed sizes: each size's SQL is
    /// the same text every time, so the connection keeps it prepared (a statement of a new length
    /// each flush was parsed anew, thousands of placeholders long). The console's traffic rollup
    /// takes the batch's sums in the same transaction.
    pub async fn insert_request_logs(&self, rows: &[RequestLogRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        let mut rest = rows;
        while !rest.is_empty() {
            // The last size is one row, so a size always fits what is left.
            let shape = LOG_STATEMENT_ROWS
                .iter()
                .position(|&size| size <= rest.len())
                .unwrap_or(LOG_STATEMENT_ROWS.len() - 1);
            let (chunk, after) = rest.split_at(LOG_STATEMENT_ROWS[shape]);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(self.log_insert_sql(shape)));
            for row in chunk {
                query = query
                    .bind(&row.request_id)
                    .bind(row.at_ms)
                    .bind(&row.endpoint)
                    .bind(&row.requested_model)
                    .bind(&row.route_id)
                    .bind(&row.provider)
                    .bind(row.attempts as i64)
                    .bind(row.status as i64)
                    .bind(&row.outcome)
                    .bind(&row.error_class)
                    .bind(row.latency_ms as i64)
                    .bind(row.ttft_ms.map(|v| v as i64))
                    .bind(row.tokens_in.map(|v| v as i64))
                    .bind(row.tokens_out.map(|v| v as i64))
                    .bind(i64::from(row.stream))
                    .bind(&row.trail);
            }
            query.execute(&mut *tx).await?;
            rest = after;
        }
        // The console's traffic rollup, a statement per bucket rather than a trigger per row.
        for (bucket_ms, sum) in traffic_of(rows) {
            sqlx::query(ADD_TRAFFIC)
                .bind(bucket_ms)
                .bind(sum.requests)
                .bind(sum.served)
                .bind(sum.fell_back)
                .bind(sum.tokens_in)
                .bind(sum.tokens_out)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(newest) = rows.iter().map(|row| row.at_ms).max() {
            sqlx::query("DELETE FROM traffic_rollup WHERE bucket_ms < $1")
                .bind(newest - TRAFFIC_KEPT_MS)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The insert of `LOG_STATEMENT_ROWS[shape]` rows, in this engine's placeholders (sqlx's
    /// `QueryBuilder` writes `?` for the `Any` driver, which PostgreSQL refuses), written once per
    /// process.
    fn log_insert_sql(&self, shape: usize) -> &'static str {
        static TEXTS: [[OnceLock<String>; LOG_STATEMENT_ROWS.len()]; 2] =
            [const { [const { OnceLock::new() }; LOG_STATEMENT_ROWS.len()] }; 2];
        let engine = match self.backend {
            Backend::Sqlite => 0,
            Backend::Postgres => 1,
        };
        let rows = LOG_STATEMENT_ROWS[shape];
        TEXTS[engine][shape].get_or_init(|| {
            let mut sql = String::from(
                "INSERT INTO request_log (request_id, at_ms, endpoint, requested_model, route_id, provider, \
                     attempts, status, outcome, error_class, latency_ms, ttft_ms, tokens_in, tokens_out, stream, trail) \
                 VALUES ",
            );
            for i in 0..rows {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 1..=LOG_COLUMNS {
                    if c > 1 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&self.placeholder(i * LOG_COLUMNS + c));
                }
                sql.push(')');
            }
            sql
        })
    }

    /// The most recent rows, newest first.
    pub async fn recent_request_logs(&self, limit: u32) -> Result<Vec<RequestLogRow>, StoreError> {
        self.request_logs(None, limit).await
    }

    /// Rows since `since_ms` (all of them up to `limit`), newest first.
    pub async fn request_logs_since(
        &self,
        since_ms: EpochMs,
        limit: u32,
    ) -> Result<Vec<RequestLogRow>, StoreError> {
        self.request_logs(Some(since_ms), limit).await
    }

    async fn request_logs(
        &self,
        since_ms: Option<EpochMs>,
        limit: u32,
    ) -> Result<Vec<RequestLogRow>, StoreError> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            String,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            i64,
            String,
            Option<String>,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
            String,
        )> = sqlx::query_as(
            "SELECT request_id, at_ms, endpoint, requested_model, route_id, provider, attempts, status, \
                 outcome, error_class, latency_ms, ttft_ms, tokens_in, tokens_out, stream, trail \
             FROM request_log WHERE ($1 IS NULL OR at_ms >= $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RequestLogRow {
                request_id: r.0,
                at_ms: r.1,
                endpoint: r.2,
                requested_model: r.3,
                route_id: r.4,
                provider: r.5,
                attempts: r.6.max(0) as u32,
                status: r.7.clamp(0, 999) as u16,
                outcome: r.8,
                error_class: r.9,
                latency_ms: r.10.max(0) as u64,
                ttft_ms: r.11.map(|v| v.max(0) as u64),
                tokens_in: r.12.map(|v| v.max(0) as u64),
                tokens_out: r.13.map(|v| v.max(0) as u64),
                stream: r.14 != 0,
                trail: r.15,
            })
            .collect())
    }

    pub async fn count_request_logs(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM request_log")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}
