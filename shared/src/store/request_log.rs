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

impl Store {
    /// Inserts a batch in one statement.
    pub async fn insert_request_logs(&self, rows: &[RequestLogRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        // The rows' placeholders in each engine's form (sqlx's `QueryBuilder` writes `?` for the
        // `Any` driver, which PostgreSQL refuses).
        let mut sql = String::from(
            "INSERT INTO request_log (request_id, at_ms, endpoint, requested_model, route_id, provider, \
                 attempts, status, outcome, error_class, latency_ms, ttft_ms, tokens_in, tokens_out, stream, trail) \
             VALUES ",
        );
        for (i, _) in rows.iter().enumerate() {
            let first = i * LOG_COLUMNS;
            let placeholders: Vec<String> = (1..=LOG_COLUMNS)
                .map(|c| self.placeholder(first + c))
                .collect();
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&placeholders.join(", "));
            sql.push(')');
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in rows {
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
        query.execute(&self.writer).await?;
        Ok(())
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
