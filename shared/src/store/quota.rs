//! Quota windows: what the providers last told us a key has left (rate-limit headers).

use super::{Store, StoreError};
use crate::time::EpochMs;

/// What one response's rate-limit headers said about a key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateLimitHint {
    pub provider: String,
    pub key_id: String,
    /// `*` for provider-wide, else the route id.
    pub scope: String,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_at_ms: Option<EpochMs>,
    /// When the provider said it: reservations after this count against `remaining_requests`.
    pub observed_ms: EpochMs,
}

impl Store {
    /// Records the provider's own view of the key's minute window.
    pub async fn record_rate_limit_hints(
        &self,
        hints: &[RateLimitHint],
        now: EpochMs,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for hint in hints {
            sqlx::query(
                "INSERT INTO quota_windows (provider, key_id, scope, \"window\", window_start_ms, \
                     remaining_requests, remaining_tokens, reset_at_ms, updated_ms) \
                 VALUES ($1, $2, $3, 'minute', $4, $5, $6, $7, $8) \
                 ON CONFLICT (provider, key_id, scope, \"window\") DO UPDATE SET \
                     window_start_ms = excluded.window_start_ms, remaining_requests = excluded.remaining_requests, \
                     remaining_tokens = excluded.remaining_tokens, \
                     reset_at_ms = excluded.reset_at_ms, updated_ms = excluded.updated_ms",
            )
            .bind(&hint.provider)
            .bind(&hint.key_id)
            .bind(&hint.scope)
            .bind(hint.observed_ms)
            .bind(hint.remaining_requests.map(|v| v as i64))
            .bind(hint.remaining_tokens.map(|v| v as i64))
            .bind(hint.reset_at_ms)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The last hint recorded for a key (provider, key id, scope).
    pub async fn rate_limit_hint(
        &self,
        provider: &str,
        key_id: &str,
        scope: &str,
    ) -> Result<Option<RateLimitHint>, StoreError> {
        type HintRow = (Option<i64>, Option<i64>, Option<i64>, i64);
        let row: Option<HintRow> = sqlx::query_as(
            "SELECT remaining_requests, remaining_tokens, reset_at_ms, window_start_ms FROM quota_windows \
             WHERE provider = $1 AND key_id = $2 AND scope = $3 AND \"window\" = 'minute'",
        )
        .bind(provider)
        .bind(key_id)
        .bind(scope)
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(requests, tokens, reset, observed_ms)| RateLimitHint {
                observed_ms,
                provider: provider.to_string(),
                key_id: key_id.to_string(),
                scope: scope.to_string(),
                remaining_requests: requests.map(|v| v.max(0) as u64),
                remaining_tokens: tokens.map(|v| v.max(0) as u64),
                reset_at_ms: reset,
            }),
        )
    }
}
