//! Operations endpoints: `/health` (alive), `/ready` (store and catalog), `/metrics` (Prometheus,
//! behind `auth.metrics_token` when one is set).

use crate::http::auth::{SecretCheck, check_secret, peer, presented};
use crate::http::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use freerouter::health::HealthState;
use freerouter::metrics as m;
use freerouter::time::now_ms;
use serde_json::json;
use std::sync::atomic::Ordering;

pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(state): State<AppState>) -> Response {
    let store_ok = state.store.ping().await.is_ok();
    let catalog_ok = state.catalog_loaded.load(Ordering::Relaxed);
    let snapshot = state.engine.catalog.snapshot();
    let servable = snapshot.servable().count();
    let status = if store_ok && catalog_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
        "database": store_ok,
        "catalog_loaded": catalog_ok,
        "catalog_version": snapshot.version,
        "servable_routes": servable,
    });
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    if let Some(token) = &state.settings.auth.metrics_token {
        let ip = peer(request.extensions()).map(|p| p.ip());
        match check_secret(&state, ip, presented(request.headers()), token) {
            SecretCheck::Right => {}
            SecretCheck::Throttled(wait) => return ApiError::auth_throttled(wait).into_response(),
            SecretCheck::Missing | SecretCheck::Wrong => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_metrics_token",
                    "/metrics needs the metrics token: send `Authorization: Bearer <metrics token>`",
                )
                .into_response();
            }
        }
    }
    publish_route_gauges(&state);
    publish_quota_gauges(&state);
    state.metrics.run_upkeep();
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Route gauges are set at scrape time from the snapshot and the health board: always current, no bookkeeping.
fn publish_route_gauges(state: &AppState) {
    let snapshot = state.engine.catalog.snapshot();
    let now = now_ms();
    for route in &snapshot.routes {
        let id = route.route_id.clone();
        metrics::gauge!(m::ROUTE_ENABLED, "route" => id.clone()).set(if route.enabled {
            1.0
        } else {
            0.0
        });
        metrics::gauge!(m::ROUTE_RANK, "route" => id.clone()).set(route.rank as f64);
        let current = state
            .engine
            .health
            .route(&route.route_id)
            .map_or(HealthState::Healthy, |h| h.effective_state(now));
        for health_state in HealthState::ALL {
            metrics::gauge!(m::ROUTE_HEALTH, "route" => id.clone(), "state" => health_state.as_str())
                .set(if health_state == current { 1.0 } else { 0.0 });
        }
    }
}

/// Per-key quota gauges from what the ledger last saw of each key (memory, refreshed in the
/// background; no store read per scrape): each provider-wide limit and what is left of it,
/// labelled by the key's fingerprint (never the key). What is left counts this process's unspent
/// leases as left, as the status does.
fn publish_quota_gauges(state: &AppState) {
    let now = now_ms();
    for provider in state.providers.values() {
        let l = provider.limits;
        for key in &provider.keys {
            let ledger = &state.engine.ledger;
            let Some(counted) = ledger.key_usage(provider, &key.id, now) else {
                continue;
            };
            // What this process's own leases hold is still this process's to send.
            let u = counted.less(&ledger.unspent(&provider.name, &key.id, now));
            let (window_requests, window_tokens) = u.window_counts(&l, now);
            for (window, limit, used) in [
                ("requests_minute", l.rpm, u.minute_requests),
                ("requests_day", l.rpd, u.day_requests),
                ("tokens_minute", l.tpm, u.minute_tokens),
                ("tokens_day", l.tpd, u.day_tokens),
                ("requests_month", l.rpmonth, u.month_requests),
                ("tokens_month", l.tpmonth, u.month_tokens),
                ("requests_window", l.rpwindow, window_requests),
                ("tokens_window", l.tpwindow, window_tokens),
            ] {
                let Some(limit) = limit else { continue };
                let labels = [
                    ("provider", provider.name.clone()),
                    ("key", key.id.clone()),
                    ("window", window.to_string()),
                ];
                metrics::gauge!(m::QUOTA_LIMIT, &labels).set(limit as f64);
                metrics::gauge!(m::QUOTA_REMAINING, &labels).set(limit.saturating_sub(used) as f64);
            }
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}
