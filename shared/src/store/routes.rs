//! Catalog rows: routes, seeding, enabling and ranking.

use super::{Store, StoreError};
use crate::catalog::{Origin, Route};
use crate::config::Limits;
use crate::time::EpochMs;
use sqlx::Row;
use sqlx::any::AnyRow;

macro_rules! route_columns {
    () => {
        "route_id, provider, upstream_model, display_name, rank, tags, \
         context_window_tokens, max_output_tokens, enabled, origin, limits, aliases"
    };
}

fn route_from_row(row: &AnyRow) -> Result<Route, StoreError> {
    let tags: String = row.try_get("tags")?;
    let aliases: String = row.try_get("aliases")?;
    let limits: String = row.try_get("limits")?;
    let origin: String = row.try_get("origin")?;
    let route_id: String = row.try_get("route_id")?;
    Ok(Route {
        tags: serde_json::from_str(&tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of {route_id}: {e}")))?,
        aliases: serde_json::from_str(&aliases)
            .map_err(|e| StoreError::Corrupt(format!("aliases of {route_id}: {e}")))?,
        limits: serde_json::from_str::<Limits>(&limits)
            .map_err(|e| StoreError::Corrupt(format!("limits of {route_id}: {e}")))?,
        origin: Origin::parse(&origin)
            .ok_or_else(|| StoreError::Corrupt(format!("origin of {route_id}: {origin}")))?,
        provider: row.try_get("provider")?,
        upstream_model: row.try_get("upstream_model")?,
        display_name: row.try_get("display_name")?,
        rank: row.try_get("rank")?,
        context_window_tokens: row.try_get::<i64, _>("context_window_tokens")?.max(0) as u64,
        max_output_tokens: row.try_get::<i64, _>("max_output_tokens")?.max(0) as u64,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        route_id,
    })
}

/// Binds a route's columns in the order every insert names them:
/// route_id, provider, upstream_model, display_name, rank, tags, context_window_tokens,
/// max_output_tokens, enabled, origin, limits, aliases, created_ms, updated_ms.
fn bind_route<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    route: &'q Route,
    now: EpochMs,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(&route.route_id)
        .bind(&route.provider)
        .bind(&route.upstream_model)
        .bind(&route.display_name)
        .bind(route.rank)
        .bind(json(&route.tags))
        .bind(route.context_window_tokens as i64)
        .bind(route.max_output_tokens as i64)
        .bind(i64::from(route.enabled))
        .bind(route.origin.as_str())
        .bind(json(&route.limits))
        .bind(json(&route.aliases))
        .bind(now)
        .bind(now)
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

impl Store {
    /// Every route, in rank order.
    pub async fn list_routes(&self) -> Result<Vec<Route>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            route_columns!(),
            " FROM routes ORDER BY rank, route_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(route_from_row).collect()
    }

    pub async fn get_route(&self, route_id: &str) -> Result<Option<Route>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            route_columns!(),
            " FROM routes WHERE route_id = $1"
        ))
        .bind(route_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(route_from_row).transpose()
    }

    /// Inserts the route, or replaces every field of the one with the same id.
    pub async fn upsert_route(&self, route: &Route, now: EpochMs) -> Result<(), StoreError> {
        bind_route(sqlx::query(
            "INSERT INTO routes (route_id, provider, upstream_model, display_name, rank, tags, \
                 context_window_tokens, max_output_tokens, enabled, origin, limits, aliases, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (route_id) DO UPDATE SET provider = excluded.provider, \
                 upstream_model = excluded.upstream_model, display_name = excluded.display_name, \
                 rank = excluded.rank, tags = excluded.tags, \
                 context_window_tokens = excluded.context_window_tokens, \
                 max_output_tokens = excluded.max_output_tokens, enabled = excluded.enabled, \
                 origin = excluded.origin, limits = excluded.limits, aliases = excluded.aliases, \
                 updated_ms = excluded.updated_ms",
        ), route, now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Seeds the default routes once in the life of the file; returns whether it did.
    pub async fn seed_defaults_once(
        &self,
        routes: &[Route],
        now: EpochMs,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        // Claim the seeding first, so two processes opening a new file never both seed.
        let claimed = sqlx::query(
            "UPDATE catalog_meta SET defaults_seeded = 1 WHERE id = 1 AND defaults_seeded = 0",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            for route in routes {
                bind_route(sqlx::query(
                    "INSERT INTO routes (route_id, provider, upstream_model, display_name, rank, \
                         tags, context_window_tokens, max_output_tokens, enabled, origin, limits, \
                         aliases, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT DO NOTHING",
                ), route, now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Returns whether the route exists.
    pub async fn set_route_enabled(
        &self,
        route_id: &str,
        enabled: bool,
        now: EpochMs,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE routes SET enabled = $1, updated_ms = $2 WHERE route_id = $3")
                .bind(i64::from(enabled))
                .bind(now)
                .bind(route_id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Returns whether the route exists.
    pub async fn set_route_rank(
        &self,
        route_id: &str,
        rank: i64,
        now: EpochMs,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE routes SET rank = $1, updated_ms = $2 WHERE route_id = $3")
            .bind(rank)
            .bind(now)
            .bind(route_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_route(&self, route_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM routes WHERE route_id = $1")
            .bind(route_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Reset to defaults: the default routes are replaced by `defaults`; routes accepted from
    /// discovery and routes of the user's own are kept.
    pub async fn reset_default_routes(
        &self,
        defaults: &[Route],
        now: EpochMs,
    ) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let removed = sqlx::query("DELETE FROM routes WHERE origin = 'default'")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for route in defaults {
            bind_route(
                sqlx::query(
                    "INSERT INTO routes (route_id, provider, upstream_model, display_name, rank, \
                     tags, context_window_tokens, max_output_tokens, enabled, origin, limits, \
                     aliases, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT DO NOTHING",
                ),
                route,
                now,
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Replaces the whole catalog with `routes` in one transaction.
    pub async fn replace_routes(&self, routes: &[Route], now: EpochMs) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM routes").execute(&mut *tx).await?;
        for route in routes {
            bind_route(sqlx::query(
                "INSERT INTO routes (route_id, provider, upstream_model, display_name, rank, tags, \
                     context_window_tokens, max_output_tokens, enabled, origin, limits, aliases, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            ), route, now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
