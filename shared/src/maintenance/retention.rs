//! Retention: the request log, decided suggestions and expired verdicts are trimmed.

use super::Maintenance;
use crate::store::{StoreError, Trimmed};
use crate::time::EpochMs;

const DAY_MS: EpochMs = 86_400_000;

impl Maintenance {
    pub async fn retain(&self, now: EpochMs) -> Result<Trimmed, StoreError> {
        let log_before = now - self.settings.request_log_retention_days as EpochMs * DAY_MS;
        let suggestions_before = now - self.settings.suggestion_retention_days as EpochMs * DAY_MS;
        self.store.trim(log_before, suggestions_before, now).await
    }
}
