//! The gateway's HTTP surface: OpenAI-compatible API, operations endpoints, and their layers.
//!
//! A request meets, outermost first: `browser::guard` (Host, Origin, content type), then on
//! `/v1/*` `auth::authenticate` (who is calling) and `rate_limit::limit_per_client`, then the
//! route's own layers (the admin API's token check; `body::buffer_body` where an extractor reads
//! the body), then the handler. The chat, Messages, Responses, completions and embeddings routes
//! read their own body, after taking their concurrency slot (`api::pipeline`). Around the `/v1/*`
//! layers, `api::anthropic` rewrites their refusals in Anthropic's shape for requests that speak its API.

pub mod admin;
pub mod api;
pub mod auth;
pub mod body;
pub mod browser;
pub mod error;
pub mod headers;
pub mod ops;
pub mod rate_limit;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};

/// Builds the router with its layers.
pub fn router(state: AppState) -> Router {
    let chat = Router::new()
        .route("/v1/chat/completions", post(api::chat::chat_completions))
        .route(
            "/v1/chat/completions/web-search",
            post(api::chat::web_search),
        )
        .route("/v1/messages", post(api::messages::messages))
        .route(
            "/v1/messages/count_tokens",
            post(api::messages::count_tokens),
        )
        .route("/v1/responses", post(api::responses::create))
        .route("/v1/completions", post(api::completions::create))
        .route("/v1/embeddings", post(api::embeddings::create));
    let api = Router::new()
        .merge(chat)
        .route("/v1/models", get(api::models::list_models))
        .route(
            "/v1/responses/{id}",
            get(api::responses::retrieve).delete(api::responses::delete),
        )
        .merge(admin::router(&state))
        .route_layer(from_fn_with_state(
            state.clone(),
            rate_limit::limit_per_client,
        ))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate))
        // Outside the two above, so their refusals reach Anthropic's clients in its shape.
        .layer(from_fn(api::anthropic::anthropic_errors));
    Router::new()
        .merge(api)
        .merge(crate::web::router(&state))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.server.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), browser::guard))
        .with_state(state)
}
