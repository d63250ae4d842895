//! Retention: old request-log rows, decided suggestions and expired verdicts go; SQLite tidies up.

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
                 (SELECT id FROM request_log WHERE at_ms < ?1 LIMIT ?2)",
                log_before_ms,
            )
            .await?;
        let suggestions = self
            .delete_in_batches(
                "DELETE FROM suggestions WHERE id IN (SELECT id FROM suggestions \
                 WHERE status != 'pending' AND decided_ms < ?1 LIMIT ?2)",
                suggestions_before_ms,
            )
            .await?;
        let verdicts = self
            .delete_in_batches(
                "DELETE FROM supervisor_verdicts WHERE rowid IN \
                 (SELECT rowid FROM supervisor_verdicts WHERE expires_ms <= ?1 LIMIT ?2)",
                now,
            )
            .await?;
        let key_cooldowns = self
            .delete_in_batches(
                "DELETE FROM key_cooldowns WHERE rowid IN (SELECT rowid FROM key_cooldowns \
                 WHERE cooldown_until_ms <= ?1 AND strikes = 0 LIMIT ?2)",
                now,
            )
            .await?;
        sqlx::query("PRAGMA optimize").execute(&self.writer).await?;
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
