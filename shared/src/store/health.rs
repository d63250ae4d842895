//! Route health, key cooldowns and invalid keys: loaded at start, written as they change.

use super::{Store, StoreError};
use crate::health::{HealthChange, HealthState, InvalidKey, KeyCooldown, RouteHealth};
use crate::time::EpochMs;
use sqlx::Row;

/// Tells every gateway to reload its health board (they watch the version).
const BUMP_HEALTH_VERSION: &str =
    "UPDATE catalog_meta SET health_version = health_version + 1 WHERE id = 1";

/// Everything the health board is rebuilt from.
pub struct HealthRecords {
    pub routes: Vec<RouteHealth>,
    pub keys: Vec<KeyCooldown>,
    pub invalid_keys: Vec<InvalidKey>,
}

impl Store {
    /// Health as persisted; key cooldowns that ended before `now` are left out.
    pub async fn load_health(&self, now: EpochMs) -> Result<HealthRecords, StoreError> {
        let rows = sqlx::query(
            "SELECT route_id, state, cooldown_until_ms, consecutive_failures, consecutive_timeouts, \
                 consecutive_not_found, learned_context_window, last_error, last_error_ms, last_success_ms \
             FROM route_health",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut routes = Vec::with_capacity(rows.len());
        for row in rows {
            let state: String = row.try_get("state")?;
            routes.push(RouteHealth {
                route_id: row.try_get("route_id")?,
                state: HealthState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("health state {state}")))?,
                cooldown_until_ms: row.try_get("cooldown_until_ms")?,
                consecutive_failures: row.try_get::<i64, _>("consecutive_failures")?.max(0) as u32,
                consecutive_timeouts: row.try_get::<i64, _>("consecutive_timeouts")?.max(0) as u32,
                consecutive_not_found: row.try_get::<i64, _>("consecutive_not_found")?.max(0)
                    as u32,
                learned_context_window: row
                    .try_get::<Option<i64>, _>("learned_context_window")?
                    .map(|w| w.max(0) as u64),
                last_error: row.try_get("last_error")?,
                last_error_ms: row.try_get("last_error_ms")?,
                last_success_ms: row.try_get("last_success_ms")?,
            });
        }
        let keys = sqlx::query(
            "SELECT provider, key_id, route_id, cooldown_until_ms, reason, strikes \
             FROM key_cooldowns WHERE cooldown_until_ms > $1 OR strikes > 0",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            Ok(KeyCooldown {
                provider: row.try_get("provider")?,
                key_id: row.try_get("key_id")?,
                route_id: row.try_get("route_id")?,
                until_ms: row.try_get("cooldown_until_ms")?,
                reason: row.try_get("reason")?,
                strikes: row.try_get::<i64, _>("strikes")?.max(0) as u32,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let invalid_keys = sqlx::query(
            "SELECT provider, key_id, since_ms, last_status, retry_at_ms, strikes FROM invalid_keys",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            Ok(InvalidKey {
                provider: row.try_get("provider")?,
                key_id: row.try_get("key_id")?,
                since_ms: row.try_get("since_ms")?,
                status: row.try_get::<i64, _>("last_status")?.clamp(0, 999) as u16,
                retry_at_ms: row.try_get("retry_at_ms")?,
                strikes: row.try_get::<i64, _>("strikes")?.clamp(0, i64::from(u32::MAX)) as u32,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(HealthRecords {
            routes,
            keys,
            invalid_keys,
        })
    }

    /// Persists a batch of health changes in one transaction.
    pub async fn apply_health_changes(
        &self,
        changes: &[HealthChange],
        now: EpochMs,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for change in changes {
            match change {
                HealthChange::Route(h) => {
                    sqlx::query(
                        "INSERT INTO route_health (route_id, state, cooldown_until_ms, consecutive_failures, \
                             consecutive_timeouts, consecutive_not_found, learned_context_window, last_error, \
                             last_error_ms, last_success_ms, updated_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (route_id) DO UPDATE SET state = excluded.state, \
                             cooldown_until_ms = excluded.cooldown_until_ms, \
                             consecutive_failures = excluded.consecutive_failures, \
                             consecutive_timeouts = excluded.consecutive_timeouts, \
                             consecutive_not_found = excluded.consecutive_not_found, \
                             learned_context_window = excluded.learned_context_window, \
                             last_error = excluded.last_error, last_error_ms = excluded.last_error_ms, \
                             last_success_ms = excluded.last_success_ms, updated_ms = excluded.updated_ms",
                    )
                    .bind(&h.route_id)
                    .bind(h.state.as_str())
                    .bind(h.cooldown_until_ms)
                    .bind(h.consecutive_failures as i64)
                    .bind(h.consecutive_timeouts as i64)
                    .bind(h.consecutive_not_found as i64)
                    .bind(h.learned_context_window.map(|w| w as i64))
                    .bind(&h.last_error)
                    .bind(h.last_error_ms)
                    .bind(h.last_success_ms)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                HealthChange::Key(k) => {
                    sqlx::query(
                        "INSERT INTO key_cooldowns (provider, key_id, route_id, cooldown_until_ms, reason, strikes, updated_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (provider, key_id, route_id) DO UPDATE SET \
                             cooldown_until_ms = excluded.cooldown_until_ms, reason = excluded.reason, \
                             strikes = excluded.strikes, updated_ms = excluded.updated_ms",
                    )
                    .bind(&k.provider)
                    .bind(&k.key_id)
                    .bind(&k.route_id)
                    .bind(k.until_ms)
                    .bind(&k.reason)
                    .bind(k.strikes as i64)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                HealthChange::KeyInvalid(mark) => {
                    sqlx::query(
                        "INSERT INTO invalid_keys (provider, key_id, since_ms, last_status, retry_at_ms, strikes) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (provider, key_id) DO UPDATE SET since_ms = excluded.since_ms, \
                             last_status = excluded.last_status, retry_at_ms = excluded.retry_at_ms, \
                             strikes = excluded.strikes",
                    )
                    .bind(&mark.provider)
                    .bind(&mark.key_id)
                    .bind(mark.since_ms)
                    .bind(i64::from(mark.status))
                    .bind(mark.retry_at_ms)
                    .bind(i64::from(mark.strikes))
                    .execute(&mut *tx)
                    .await?;
                }
                HealthChange::KeyValid { provider, key_id } => {
                    sqlx::query("DELETE FROM invalid_keys WHERE provider = $1 AND key_id = $2")
                        .bind(provider)
                        .bind(key_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the health of one route (or all), its key cooldowns and the invalid-key marks of
    /// its provider included, and tells the gateways.
    pub async fn reset_health(&self, route_id: Option<&str>) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let cleared = match route_id {
            Some(id) => {
                sqlx::query("DELETE FROM key_cooldowns WHERE route_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "DELETE FROM invalid_keys WHERE provider IN (SELECT provider FROM routes WHERE route_id = $1)",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM route_health WHERE route_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
            None => {
                sqlx::query("DELETE FROM key_cooldowns")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM invalid_keys")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM route_health")
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
        };
        sqlx::query(BUMP_HEALTH_VERSION).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(cleared)
    }

    /// A key's rest on one route ends now, for every gateway (they reload on the health version).
    pub async fn lift_key_cooldown(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
    ) -> Result<bool, StoreError> {
        self.delete_announcing(
            sqlx::query(
                "DELETE FROM key_cooldowns WHERE provider = $1 AND key_id = $2 AND route_id = $3",
            )
            .bind(provider)
            .bind(key_id)
            .bind(route_id),
        )
        .await
    }

    /// Keys the providers refused (401/403), by provider.
    pub async fn invalid_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT provider, key_id FROM invalid_keys")
            .fetch_all(&self.pool)
            .await?)
    }

    /// A key seen working again: usable at once by every gateway (they reload on the health version).
    pub async fn restore_key(&self, provider: &str, key_id: &str) -> Result<bool, StoreError> {
        self.delete_announcing(
            sqlx::query("DELETE FROM invalid_keys WHERE provider = $1 AND key_id = $2")
                .bind(provider)
                .bind(key_id),
        )
        .await
    }

    /// Runs `delete` and, when it removed anything, bumps the health version in the same
    /// transaction: every gateway reloads its health board.
    async fn delete_announcing(
        &self,
        delete: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let removed = delete.execute(&mut *tx).await?.rows_affected();
        if removed > 0 {
            sqlx::query(BUMP_HEALTH_VERSION).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Origin, RouteSeed};
    use crate::store::testing::on_both_backends;

    fn mark(provider: &str) -> HealthChange {
        HealthChange::KeyInvalid(InvalidKey {
            provider: provider.into(),
            key_id: format!("{provider}-key"),
            since_ms: 1,
            status: 401,
            retry_at_ms: i64::MAX,
            strikes: 1,
        })
    }

    on_both_backends! {
        async fn a_health_reset_clears_the_invalid_key_marks_of_the_route_s_provider_or_of_all(store: Store) {
            let route = RouteSeed {
                provider: "pa".into(),
                model: "m".into(),
                rank: Some(1),
                ..RouteSeed::default()
            }
            .into_route(Origin::Manual, true, 1);
            store.upsert_route(&route, 1).await.unwrap();
            store
                .apply_health_changes(&[mark("pa"), mark("pb")], 1)
                .await
                .unwrap();
            store.reset_health(Some("pa/m")).await.unwrap();
            let left = store.load_health(2).await.unwrap().invalid_keys;
            assert_eq!(
                left.iter().map(|k| k.provider.as_str()).collect::<Vec<_>>(),
                vec!["pb"],
                "the route's provider's marks are gone, the others stay"
            );
            store.reset_health(None).await.unwrap();
            assert!(store.load_health(2).await.unwrap().invalid_keys.is_empty());
    }
    }
}
