//! The request log: one row per client request, written in batches.

use super::{Store, StoreError};
use crate::time::EpochMs;

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

impl Store {
    /// Inserts a batch in one transaction, in statements of a few fixed sizes: each size's SQL is
    /// the same text every time, so the connection keeps it prepared (a statement of a new length
    /// each flush was parsed anew, thousands of placeholders long).
    pub async fn insert_request_logs(&self, rows: &[RequestLogRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        let mut rest = rows;
        while !rest.is_empty() {
            let size = LOG_STATEMENT_ROWS
                .iter()
                .copied()
                .find(|&size| size <= rest.len())
                .unwrap_or(1);
            let (chunk, after) = rest.split_at(size);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(self.log_insert_sql(size)));
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
        tx.commit().await?;
        Ok(())
    }

    /// The insert of `rows` rows, in this engine's placeholders (sqlx's `QueryBuilder` writes `?`
    /// for the `Any` driver, which PostgreSQL refuses).
    fn log_insert_sql(&self, rows: usize) -> String {
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
