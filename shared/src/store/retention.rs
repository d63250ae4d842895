//! Retention: old request-log rows, decided suggestions and expired verdicts go; SQLite tidies up
//! (PostgreSQL's autovacuum does on its own).

use super::{Store, StoreError};
use crate::time::EpochMs;

/// What one retention pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub request_log: u64,
    pub suggestions: u64,
    pub verdicts: u64,
    pub key_cooldowns: u64,
}

/// Rows one delete takes, so retention never holds the write lock for long: the gateways' ledger
/// writes wait for at most one batch.
const BATCH: i64 = 1_000;

impl Store {
    /// Deletes what is older than the cut-offs, a bounded batch at a time, then lets SQLite
    /// refresh its statistics.
    pub async fn trim(
        &self,
        log_before_ms: EpochMs,
        suggestions_before_ms: EpochMs,
        now: EpochMs,
    ) -> Result<Trimmed, StoreError> {
        let request_log = self
            .delete_in_batches(
                "DELETE FROM request_log WHERE id IN \
                 (SELECT id FROM request_log WHERE at_ms < $1 LIMIT $2)",
                log_before_ms,
            )
            .await?;
        let suggestions = self
            .delete_in_batches(
                "DELETE FROM suggestions WHERE id IN (SELECT id FROM suggestions \
                 WHERE status != 'pending' AND decided_ms < $1 LIMIT $2)",
                suggestions_before_ms,
            )
            .await?;
        let verdicts = self
            .delete_in_batches(
                "DELETE FROM supervisor_verdicts WHERE (provider, upstream_model) IN \
                 (SELECT provider, upstream_model FROM supervisor_verdicts \
                  WHERE expires_ms <= $1 LIMIT $2)",
                now,
            )
            .await?;
        let key_cooldowns = self
            .delete_in_batches(
                "DELETE FROM key_cooldowns WHERE (provider, key_id, route_id) IN \
                 (SELECT provider, key_id, route_id FROM key_cooldowns \
                  WHERE cooldown_until_ms <= $1 AND strikes = 0 LIMIT $2)",
                now,
            )
            .await?;
        // PostgreSQL's autovacuum keeps its statistics; SQLite refreshes them when asked.
        if self.backend == super::Backend::Sqlite {
            sqlx::query("PRAGMA optimize").execute(&self.writer).await?;
        }
        Ok(Trimmed {
            request_log,
            suggestions,
            verdicts,
            key_cooldowns,
        })
    }

    /// Runs a `DELETE … LIMIT ?2` bound to `at` until a batch deletes fewer rows than [`BATCH`].
    async fn delete_in_batches(
        &self,
        statement: &'static str,
        at: EpochMs,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let done = sqlx::query(statement)
                .bind(at)
                .bind(BATCH)
                .execute(&self.writer)
                .await?
                .rows_affected();
            total += done;
            if done < BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::RequestLogRow;
    use super::BATCH;
    use crate::store::testing::on_both_backends;

    fn row(i: i64, at_ms: i64) -> RequestLogRow {
        RequestLogRow {
            request_id: format!("req_{i}"),
            at_ms,
            endpoint: "chat_completions".into(),
            requested_model: "auto".into(),
            route_id: Some("p/m".into()),
            provider: Some("p".into()),
            attempts: 1,
            status: 200,
            outcome: "ok".into(),
            error_class: None,
            latency_ms: 5,
            ttft_ms: None,
            tokens_in: Some(1),
            tokens_out: Some(1),
            stream: false,
            trail: "p/m:ok".into(),
        }
    }

    on_both_backends! {
        async fn a_backlog_larger_than_a_batch_is_trimmed_whole_and_what_is_recent_stays(store: Store) {
            let old = 2 * BATCH + 321;
            let rows: Vec<_> = (0..old)
                .map(|i| row(i, 1_000 + i))
                .chain((0..10).map(|i| row(old + i, 1_000_000)))
                .collect();
            for chunk in rows.chunks(500) {
                store.insert_request_logs(chunk).await.unwrap();
            }
            let trimmed = store.trim(500_000, 0, 0).await.unwrap();
            assert_eq!(trimmed.request_log, old as u64);
            let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM request_log")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(left, 10);
    }
    }
}
