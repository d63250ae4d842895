//! The quota ledger: one row per reserved upstream request. A reservation checks every limit and
//! takes its share in one atomic statement, so gateways sharing the file never overspend a key.

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

fn limit(value: Option<u64>) -> Option<i64> {
    value.map(|v| v.min(i64::MAX as u64) as i64)
}

impl Store {
    /// Reserves in one statement; `Some(id)` when granted, `None` when a limit (or what the provider
    /// last said is left) has no room.
    pub async fn reserve(&self, ask: &ReservationAsk<'_>) -> Result<Option<i64>, StoreError> {
        // Rows that count: settled ones, and unsettled ones not yet expired.
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO quota_ledger (provider, key_id, route_id, at_ms, tokens, settled, expires_ms)
             SELECT ?1, ?2, ?3, ?4, ?5, 0, ?6
             WHERE (?7 IS NULL OR (SELECT COUNT(*) FROM quota_ledger WHERE provider = ?1 AND key_id = ?2
                        AND at_ms > ?4 - 60000 AND (settled = 1 OR expires_ms > ?4)) < ?7)
               AND (?8 IS NULL OR (SELECT COALESCE(SUM(tokens), 0) FROM quota_ledger WHERE provider = ?1 AND key_id = ?2
                        AND at_ms > ?4 - 60000 AND (settled = 1 OR expires_ms > ?4)) + ?5 <= ?8)
               AND (?9 IS NULL OR (SELECT COUNT(*) FROM quota_ledger WHERE provider = ?1 AND key_id = ?2
                        AND at_ms >= ?11 AND (settled = 1 OR expires_ms > ?4)) < ?9)
               AND (?10 IS NULL OR (SELECT COALESCE(SUM(tokens), 0) FROM quota_ledger WHERE provider = ?1 AND key_id = ?2
                        AND at_ms >= ?11 AND (settled = 1 OR expires_ms > ?4)) + ?5 <= ?10)
               AND (?12 IS NULL OR (SELECT COUNT(*) FROM quota_ledger WHERE provider = ?1 AND key_id = ?2 AND route_id = ?3
                        AND at_ms > ?4 - 60000 AND (settled = 1 OR expires_ms > ?4)) < ?12)
               AND (?13 IS NULL OR (SELECT COALESCE(SUM(tokens), 0) FROM quota_ledger WHERE provider = ?1 AND key_id = ?2
                        AND route_id = ?3 AND at_ms > ?4 - 60000 AND (settled = 1 OR expires_ms > ?4)) + ?5 <= ?13)
               AND (?14 IS NULL OR (SELECT COUNT(*) FROM quota_ledger WHERE provider = ?1 AND key_id = ?2 AND route_id = ?3
                        AND at_ms >= ?11 AND (settled = 1 OR expires_ms > ?4)) < ?14)
               AND (?15 IS NULL OR (SELECT COALESCE(SUM(tokens), 0) FROM quota_ledger WHERE provider = ?1 AND key_id = ?2
                        AND route_id = ?3 AND at_ms >= ?11 AND (settled = 1 OR expires_ms > ?4)) + ?5 <= ?15)
               AND NOT EXISTS (SELECT 1 FROM quota_windows h
                        WHERE h.provider = ?1 AND h.key_id = ?2 AND h.scope IN ('*', ?3) AND h.window = 'minute'
                          AND h.reset_at_ms > ?4 AND h.remaining_requests IS NOT NULL
                          AND (SELECT COUNT(*) FROM quota_ledger l WHERE l.provider = ?1 AND l.key_id = ?2
                                 AND l.at_ms > h.window_start_ms
                                 AND (h.scope = '*' OR l.route_id = h.scope) AND (l.settled = 1 OR l.expires_ms > ?4)) >= h.remaining_requests)
             RETURNING id",
        )
        .bind(ask.provider)
        .bind(ask.key_id)
        .bind(ask.route_id)
        .bind(ask.now)
        .bind(ask.tokens.min(i64::MAX as u64) as i64)
        .bind(ask.expires_ms)
        .bind(limit(ask.key_limits.rpm))
        .bind(limit(ask.key_limits.tpm))
        .bind(limit(ask.key_limits.rpd))
        .bind(limit(ask.key_limits.tpd))
        .bind(ask.day_start)
        .bind(limit(ask.route_limits.rpm))
        .bind(limit(ask.route_limits.tpm))
        .bind(limit(ask.route_limits.rpd))
        .bind(limit(ask.route_limits.tpd))
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(|(id,)| id))
    }

    /// Replaces a reservation's estimate with the real usage.
    pub async fn settle(&self, id: i64, tokens: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE quota_ledger SET tokens = ?, settled = 1 WHERE id = ?")
            .bind(tokens.min(i64::MAX as u64) as i64)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives a reservation back (the provider did not count the request).
    pub async fn release(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM quota_ledger WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
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
        let row: (i64, i64, Option<i64>, i64, i64) = sqlx::query_as(
            "SELECT
                 COALESCE(SUM(CASE WHEN at_ms > ?3 - 60000 THEN 1 ELSE 0 END), 0),
                 COALESCE(SUM(CASE WHEN at_ms > ?3 - 60000 THEN tokens ELSE 0 END), 0),
                 MIN(CASE WHEN at_ms > ?3 - 60000 THEN at_ms END),
                 COALESCE(SUM(CASE WHEN at_ms >= ?4 THEN 1 ELSE 0 END), 0),
                 COALESCE(SUM(CASE WHEN at_ms >= ?4 THEN tokens ELSE 0 END), 0)
             FROM quota_ledger
             WHERE provider = ?1 AND key_id = ?2 AND (?5 IS NULL OR route_id = ?5)
               AND at_ms >= MIN(?4, ?3 - 60000) AND (settled = 1 OR expires_ms > ?3)",
        )
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
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT MAX(h.reset_at_ms) FROM quota_windows h
             WHERE h.provider = ?1 AND h.key_id = ?2 AND h.scope IN ('*', ?3) AND h.window = 'minute'
               AND h.reset_at_ms > ?4 AND h.remaining_requests IS NOT NULL
               AND (SELECT COUNT(*) FROM quota_ledger l WHERE l.provider = ?1 AND l.key_id = ?2
                      AND l.at_ms > h.window_start_ms
                                 AND (h.scope = '*' OR l.route_id = h.scope) AND (l.settled = 1 OR l.expires_ms > ?4)) >= h.remaining_requests",
        )
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
