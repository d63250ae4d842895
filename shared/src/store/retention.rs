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

impl Store {
    /// Deletes what is older than the cut-offs, then lets SQLite refresh its statistics.
    pub async fn trim(
        &self,
        log_before_ms: EpochMs,
        suggestions_before_ms: EpochMs,
        now: EpochMs,
    ) -> Result<Trimmed, StoreError> {
        let request_log = sqlx::query("DELETE FROM request_log WHERE at_ms < ?")
            .bind(log_before_ms)
            .execute(&self.writer)
            .await?
            .rows_affected();
        let suggestions =
            sqlx::query("DELETE FROM suggestions WHERE status != 'pending' AND decided_ms < ?")
                .bind(suggestions_before_ms)
                .execute(&self.writer)
                .await?
                .rows_affected();
        let verdicts = sqlx::query("DELETE FROM supervisor_verdicts WHERE expires_ms <= ?")
            .bind(now)
            .execute(&self.writer)
            .await?
            .rows_affected();
        let key_cooldowns =
            sqlx::query("DELETE FROM key_cooldowns WHERE cooldown_until_ms <= ? AND strikes = 0")
                .bind(now)
                .execute(&self.writer)
                .await?
                .rows_affected();
        sqlx::query("PRAGMA optimize").execute(&self.writer).await?;
        Ok(Trimmed {
            request_log,
            suggestions,
            verdicts,
            key_cooldowns,
        })
    }
}
