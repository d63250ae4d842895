//! The admin API under `/v1/gateway/`: the same operations as adminctl, through the same library
//! functions. Reads are open (behind client keys or the admin token when keys are set); every
//! other method needs the admin token (`auth::require_admin`), and without one configured the
//! surface is read-only and says how to enable it.

use crate::http::error::ApiError;
use crate::http::{auth, body};
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use freerouter::admin::{AdminError, catalog, providers, stats};
use freerouter::maintenance::Maintenance;
use freerouter::maintenance::apply::{ApplyError, apply};
use freerouter::store::SuggestionStatus;
use freerouter::time::now_ms;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/gateway/models", get(list_models).put(replace_models))
        .route("/v1/gateway/models/enable", post(enable))
        .route("/v1/gateway/models/disable", post(disable))
        .route("/v1/gateway/models/rank", post(rank))
        .route("/v1/gateway/models/auto-rank", post(auto_rank))
        .route("/v1/gateway/models/reset", post(reset))
        .route("/v1/gateway/health/reset", post(health_reset))
        .route("/v1/gateway/endpoint-diagnosis", get(diagnosis))
        .route(
            "/v1/gateway/endpoint-diagnosis/refresh",
            post(diagnosis_refresh),
        )
        .route(
            "/v1/gateway/endpoint-diagnosis/apply",
            post(diagnosis_apply),
        )
        .route("/v1/gateway/providers/status", get(providers_status))
        // The original FreeRouter's paths, for its clients and scripts: the route id as the path
        // tail (it holds `/`; URL-encoded or not), the same handlers and auth.
        .route("/v1/gateway/models/{*route_and_action}", post(route_action))
        .route("/v1/providers/status", get(providers_status))
        .route_layer(from_fn_with_state(state.clone(), body::buffer_body))
        .route_layer(from_fn_with_state(
            state.clone(),
            changes_need_the_admin_token,
        ))
}

/// Reads pass; anything else is a change and needs the admin token.
async fn changes_need_the_admin_token(
    state: State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    auth::require_admin(state, request, next).await
}

fn admin_error(error: AdminError) -> ApiError {
    match error {
        AdminError::UnknownRoute(_)
        | AdminError::UnknownSuggestion(_)
        | AdminError::Apply(ApplyError::RouteGone(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
        }
        AdminError::Apply(ApplyError::NotPending(_)) => {
            ApiError::new(StatusCode::CONFLICT, "not_pending", error.to_string())
        }
        other => {
            tracing::warn!(error = %other, "admin operation failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the database could not be reached",
            )
        }
    }
}

fn store_error(error: freerouter::store::StoreError) -> ApiError {
    admin_error(AdminError::Store(error))
}

async fn list_models(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let routes = state.store.list_routes().await.map_err(store_error)?;
    let pending = state
        .store
        .suggestions(Some(SuggestionStatus::Pending))
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"routes": routes, "pending": pending})))
}

/// A route as the replace call takes it: the config file's `[[routes]]` shape, plus `enabled`.
#[derive(Deserialize)]
struct RouteEntry {
    #[serde(flatten)]
    seed: freerouter::catalog::RouteSeed,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Deserialize)]
struct ReplaceBody {
    routes: Vec<RouteEntry>,
}

/// `PUT /v1/gateway/models`: the catalog becomes exactly these routes.
async fn replace_models(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let ReplaceBody { routes } = parse(&body)?;
    let routes: Vec<_> = routes
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            entry.seed.into_route(
                freerouter::catalog::Origin::Manual,
                entry.enabled,
                (i as i64 + 1) * 10,
            )
        })
        .collect();
    if let Some(unknown) = routes
        .iter()
        .find(|r| !state.providers.contains_key(&r.provider))
    {
        return Err(ApiError::invalid_request(
            format!(
                "route {} names an unknown provider {:?}",
                unknown.route_id, unknown.provider
            ),
            Some("routes".into()),
        ));
    }
    state
        .store
        .replace_routes(&routes, now_ms())
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"routes": routes.len()})))
}

#[derive(Deserialize)]
struct RouteBody {
    route: String,
}

#[derive(Deserialize)]
struct RankBody {
    route: String,
    rank: i64,
}

#[derive(Deserialize, Default)]
struct HealthBody {
    route: Option<String>,
}

#[derive(Deserialize)]
struct ApplyBody {
    id: i64,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("invalid body: {e}"), None))
}

async fn enable(state: State<AppState>, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    set_enabled(state, body, true).await
}

async fn disable(state: State<AppState>, body: axum::body::Bytes) -> Result<Json<Value>, ApiError> {
    set_enabled(state, body, false).await
}

async fn set_enabled(
    State(state): State<AppState>,
    body: axum::body::Bytes,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let RouteBody { route } = parse(&body)?;
    turn(&state, &route, enabled).await
}

/// Turns a route on or off, in the store for every process and in this one's catalog at once
/// (the others, and this one should the reload fail, follow within `catalog.reload_interval_ms`).
async fn turn(state: &AppState, route: &str, enabled: bool) -> Result<Json<Value>, ApiError> {
    catalog::set_enabled(&state.store, route, enabled, now_ms())
        .await
        .map_err(admin_error)?;
    if let Err(error) = state.engine.catalog.reload(&state.store).await {
        tracing::warn!(%error, "reloading the catalog after a route change failed; the poll follows");
    }
    Ok(Json(json!({"route": route, "enabled": enabled})))
}

/// `POST /v1/gateway/models/{route_id}/enable`, `…/disable`, `…/health/reset`.
async fn route_action(
    State(state): State<AppState>,
    Path(tail): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (route, action) = split_route_action(&tail).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "expected /v1/gateway/models/{route_id}/enable, /disable or /health/reset",
        )
    })?;
    match action {
        RouteAction::Enable | RouteAction::Disable => {
            turn(&state, route, action == RouteAction::Enable).await
        }
        RouteAction::HealthReset => {
            let cleared = state
                .store
                .reset_health(Some(route))
                .await
                .map_err(store_error)?;
            Ok(Json(json!({"reset": route, "routes_cleared": cleared})))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RouteAction {
    Enable,
    Disable,
    HealthReset,
}

/// `groq/llama-3.3-70b/enable` → (`groq/llama-3.3-70b`, enable).
fn split_route_action(tail: &str) -> Option<(&str, RouteAction)> {
    let tail = tail.trim_start_matches('/');
    [
        ("/health/reset", RouteAction::HealthReset),
        ("/enable", RouteAction::Enable),
        ("/disable", RouteAction::Disable),
    ]
    .into_iter()
    .find_map(|(suffix, action)| {
        tail.strip_suffix(suffix)
            .filter(|route| !route.is_empty())
            .map(|route| (route, action))
    })
}

async fn rank(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let RankBody { route, rank } = parse(&body)?;
    catalog::set_rank(&state.store, &route, rank, now_ms())
        .await
        .map_err(admin_error)?;
    Ok(Json(json!({"route": route, "rank": rank})))
}

async fn auto_rank(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let measures = stats::route_measures(&state.store, now)
        .await
        .map_err(store_error)?;
    let changes = catalog::auto_rank(&state.store, &measures, now)
        .await
        .map_err(admin_error)?;
    Ok(Json(json!({"moved": changes})))
}

async fn reset(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let replaced = catalog::reset_to_defaults(&state.store, &state.settings, now_ms())
        .await
        .map_err(admin_error)?;
    Ok(Json(json!({"default_routes_replaced": replaced})))
}

async fn health_reset(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let HealthBody { route } = if body.is_empty() {
        HealthBody::default()
    } else {
        parse(&body)?
    };
    // This gateway's own marks still queued (the failure that made the user reset, say) land first.
    if !state.engine.writer.flushed(Duration::from_secs(2)).await {
        tracing::warn!(
            "health reset before the writer's queue was written: a queued mark may return"
        );
    }
    let cleared = state
        .store
        .reset_health(route.as_deref())
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"reset": route, "routes_cleared": cleared})))
}

async fn diagnosis(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let suggestions = state.store.suggestions(None).await.map_err(store_error)?;
    Ok(Json(json!({"suggestions": suggestions})))
}

async fn diagnosis_refresh(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let maintenance = Maintenance {
        store: state.store.clone(),
        providers: (*state.providers).clone(),
        http: freerouter::providers::http_client(Duration::from_millis(
            state.settings.routing.connect_timeout_ms,
        ))
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "no HTTP client",
            )
        })?,
        settings: state.settings.maintainer.clone(),
    };
    let report = maintenance.diagnose(now_ms()).await.map_err(store_error)?;
    Ok(Json(json!({"report": report})))
}

async fn diagnosis_apply(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let ApplyBody { id } = parse(&body)?;
    let pending = state
        .store
        .suggestions(Some(SuggestionStatus::Pending))
        .await
        .map_err(store_error)?;
    let suggestion = pending
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(AdminError::UnknownSuggestion(id))
        .map_err(admin_error)?;
    apply(&state.store, &suggestion, "human", now_ms())
        .await
        .map_err(|e| admin_error(AdminError::Apply(e)))?;
    Ok(Json(
        json!({"applied": suggestion.id, "kind": suggestion.kind, "route": suggestion.route_id}),
    ))
}

async fn providers_status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let statuses = providers::status(
        &state.store,
        &state.providers,
        Some(&state.engine.ledger),
        now_ms(),
    )
    .await
    .map_err(store_error)?;
    Ok(Json(json!({"providers": statuses})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_id_with_slashes_is_split_from_its_action() {
        assert_eq!(
            split_route_action("groq/llama-3.3-70b-versatile/enable"),
            Some(("groq/llama-3.3-70b-versatile", RouteAction::Enable))
        );
        assert_eq!(
            split_route_action("openrouter/qwen/qwen3-coder:free/health/reset"),
            Some(("openrouter/qwen/qwen3-coder:free", RouteAction::HealthReset))
        );
        assert_eq!(
            split_route_action("p/m/disable"),
            Some(("p/m", RouteAction::Disable))
        );
        assert_eq!(split_route_action("/enable"), None);
        assert_eq!(split_route_action("p/m/frobnicate"), None);
    }
}
