//! Catalog operations: enable, disable, rank, reset to defaults, auto-rank.

use super::AdminError;
use super::stats::RouteMeasure;
use crate::catalog::{Route, builtin};
use crate::config::Settings;
use crate::store::Store;
use crate::time::EpochMs;
use serde::Serialize;

pub async fn set_enabled(
    store: &Store,
    route_id: &str,
    enabled: bool,
    now: EpochMs,
) -> Result<(), AdminError> {
    if store.set_route_enabled(route_id, enabled, now).await? {
        Ok(())
    } else {
        Err(AdminError::UnknownRoute(route_id.to_string()))
    }
}

pub async fn set_rank(
    store: &Store,
    route_id: &str,
    rank: i64,
    now: EpochMs,
) -> Result<(), AdminError> {
    if store.set_route_rank(route_id, rank, now).await? {
        Ok(())
    } else {
        Err(AdminError::UnknownRoute(route_id.to_string()))
    }
}

/// Puts the built-in default routes back as shipped (none when `catalog.defaults` is off), ranked
/// with the config's `trial` overrides; accepted and manual routes are kept.
pub async fn reset_to_defaults(
    store: &Store,
    settings: &Settings,
    now: EpochMs,
) -> Result<u64, AdminError> {
    let defaults = if settings.catalog.defaults {
        builtin::registry().ranked_routes_for(&settings.providers)
    } else {
        Vec::new()
    };
    Ok(store.reset_default_routes(&defaults, now).await?)
}

/// One route's move in an auto-rank.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankChange {
    pub route_id: String,
    pub from: i64,
    pub to: i64,
    pub score: f64,
}

/// The score auto-rank orders by: the catalog's order as the capability prior, times the measured
/// success rate (smoothed, so a route with little traffic keeps its place), times a speed factor.
pub fn auto_rank_score(position: usize, routes: usize, measure: Option<&RouteMeasure>) -> f64 {
    let capability = 1.0 - position as f64 / routes.max(1) as f64 * 0.5;
    let (ok, failed, median_ms) =
        measure.map_or((0, 0, None), |m| (m.served, m.failed, m.median_latency_ms));
    let success = (ok as f64 + 4.0) / ((ok + failed) as f64 + 4.0 + 0.0001);
    let speed = median_ms.map_or(1.0, |ms| 1.0 / (1.0 + ms as f64 / 10_000.0));
    capability * success.min(1.0) * speed
}

/// Recomputes ranks (10, 20, …) from capability and measured success and speed; returns what moved.
pub async fn auto_rank(
    store: &Store,
    measures: &[RouteMeasure],
    now: EpochMs,
) -> Result<Vec<RankChange>, AdminError> {
    let routes: Vec<Route> = store.list_routes().await?;
    let n = routes.len();
    let mut scored: Vec<(f64, &Route)> = routes
        .iter()
        .enumerate()
        .map(|(position, route)| {
            let measure = measures.iter().find(|m| m.route_id == route.route_id);
            (auto_rank_score(position, n, measure), route)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut changes = Vec::new();
    for (i, (score, route)) in scored.into_iter().enumerate() {
        let rank = (i as i64 + 1) * 10;
        if rank != route.rank {
            store.set_route_rank(&route.route_id, rank, now).await?;
            changes.push(RankChange {
                route_id: route.route_id.clone(),
                from: route.rank,
                to: rank,
                score,
            });
        }
    }
    Ok(changes)
}
