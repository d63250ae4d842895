//! The gateway's HTTP surface: OpenAI-compatible API, operations endpoints, and their layers.

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod headers;
pub mod ops;

use crate::limits::ClientKeyExtractor;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use error::ApiError;
use freerouter::metrics as m;
use std::sync::Arc;
use std::time::Duration;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::{GovernorError, GovernorLayer};

/// Builds the router with its layers.
pub fn router(state: AppState) -> Router {
    let limits = &state.settings.limits;
    let mut api = Router::new()
        .route("/v1/chat/completions", post(api::chat::chat_completions))
        .route(
            "/v1/chat/completions/web-search",
            post(api::chat::web_search),
        )
        .route("/v1/models", get(api::models::list_models))
        .route("/v1/responses", post(api::responses::create))
        .route(
            "/v1/responses/{id}",
            get(api::responses::retrieve).delete(api::responses::delete),
        )
        .route("/v1/completions", post(api::completions::create));
    api = api.merge(admin::router());
    api = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_client_key,
    ));
    if limits.per_client_burst > 0 && limits.per_client_per_second > 0 {
        let period = Duration::from_nanos(1_000_000_000 / u64::from(limits.per_client_per_second));
        let config = GovernorConfigBuilder::default()
            .period(period)
            .burst_size(limits.per_client_burst)
            .key_extractor(ClientKeyExtractor)
            .finish();
        if let Some(config) = config {
            let layer = GovernorLayer::new(Arc::new(config)).error_handler(|error| {
                let wait = match error {
                    GovernorError::TooManyRequests { wait_time, .. } => wait_time.max(1),
                    _ => 1,
                };
                metrics::counter!(m::CLIENT_RATE_LIMITED_TOTAL).increment(1);
                axum::response::IntoResponse::into_response(ApiError::rate_limited(wait))
            });
            api = api.layer(layer);
        }
    }
    Router::new()
        .merge(api)
        .merge(crate::web::router())
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.server.max_body_bytes))
        .with_state(state)
}
