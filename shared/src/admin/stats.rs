//! Traffic statistics from the request log: requests, success rate, fallbacks by reason, tokens by
//! provider, and per-route measures for auto-rank.

use crate::store::{RequestLogRow, Store, StoreError};
use crate::time::EpochMs;
use serde::Serialize;
use std::collections::BTreeMap;

/// One window's traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WindowStats {
    pub window: String,
    pub requests: u64,
    pub served: u64,
    pub success_rate: f64,
    /// Requests served after at least one failed attempt.
    pub fell_back: u64,
    /// Failed attempts by reason (`429`, `5xx`, …).
    pub fallbacks_by_reason: BTreeMap<String, u64>,
    /// Errors by outcome (`quota_exhausted`, `invalid_request`, …).
    pub errors_by_outcome: BTreeMap<String, u64>,
    /// Prompt and completion tokens by provider.
    pub tokens_by_provider: BTreeMap<String, (u64, u64)>,
}

/// What the log says about one route.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RouteMeasure {
    pub route_id: String,
    pub served: u64,
    pub failed: u64,
    pub median_latency_ms: Option<u64>,
}

/// Rows read at most per window (the log can be large; stats are a summary).
const MAX_ROWS: u32 = 200_000;

fn window_stats(name: &str, rows: &[RequestLogRow]) -> WindowStats {
    let mut stats = WindowStats {
        window: name.to_string(),
        requests: rows.len() as u64,
        ..WindowStats::default()
    };
    for row in rows {
        if row.status == 200 {
            stats.served += 1;
        } else {
            *stats
                .errors_by_outcome
                .entry(row.outcome.clone())
                .or_default() += 1;
        }
        let failed: Vec<&str> = row
            .trail
            .split(',')
            .filter_map(|a| a.rsplit_once(':').map(|(_, result)| result))
            .filter(|r| !r.is_empty() && *r != "ok")
            .collect();
        if row.status == 200 && !failed.is_empty() {
            stats.fell_back += 1;
        }
        for reason in failed {
            *stats
                .fallbacks_by_reason
                .entry(reason.to_string())
                .or_default() += 1;
        }
        if let Some(provider) = &row.provider {
            let entry = stats
                .tokens_by_provider
                .entry(provider.clone())
                .or_default();
            entry.0 += row.tokens_in.unwrap_or(0);
            entry.1 += row.tokens_out.unwrap_or(0);
        }
    }
    stats.success_rate = if stats.requests == 0 {
        0.0
    } else {
        stats.served as f64 / stats.requests as f64
    };
    stats
}

/// Traffic over the last hour, day and week.
pub async fn collect(store: &Store, now: EpochMs) -> Result<Vec<WindowStats>, StoreError> {
    let week = store
        .request_logs_since(now - 7 * 86_400_000, MAX_ROWS)
        .await?;
    Ok([
        ("1h", 3_600_000),
        ("24h", 86_400_000),
        ("7d", 7 * 86_400_000),
    ]
    .into_iter()
    .map(|(name, span)| {
        let rows: Vec<RequestLogRow> = week
            .iter()
            .filter(|r| r.at_ms >= now - span)
            .cloned()
            .collect();
        window_stats(name, &rows)
    })
    .collect())
}

/// Per-route served/failed counts and median latency over the last week.
pub async fn route_measures(store: &Store, now: EpochMs) -> Result<Vec<RouteMeasure>, StoreError> {
    let rows = store
        .request_logs_since(now - 7 * 86_400_000, MAX_ROWS)
        .await?;
    let mut by_route: BTreeMap<String, (RouteMeasure, Vec<u64>)> = BTreeMap::new();
    for row in &rows {
        for attempt in row.trail.split(',').filter(|a| !a.is_empty()) {
            let Some((route, result)) = attempt.rsplit_once(':') else {
                continue;
            };
            let (measure, latencies) = by_route.entry(route.to_string()).or_insert_with(|| {
                (
                    RouteMeasure {
                        route_id: route.to_string(),
                        ..RouteMeasure::default()
                    },
                    Vec::new(),
                )
            });
            if result == "ok" {
                measure.served += 1;
                latencies.push(row.latency_ms);
            } else {
                measure.failed += 1;
            }
        }
    }
    Ok(by_route
        .into_values()
        .map(|(mut measure, mut latencies)| {
            latencies.sort_unstable();
            measure.median_latency_ms = latencies.get(latencies.len() / 2).copied();
            measure
        })
        .collect())
}
