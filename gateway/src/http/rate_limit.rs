//! The per-client rate limit as a layer: runs after [`auth::authenticate`](super::auth), so it
//! counts the client it found (the matched key, else the peer), never an unverified token.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::limits::ClientId;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use freerouter::metrics as m;

pub async fn limit_per_client(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = &state.client_limiter else {
        return next.run(request).await;
    };
    let (client, from_loopback) = request
        .extensions()
        .get::<Caller>()
        .map_or((ClientId::Unknown, false), |c| (c.client, c.from_loopback));
    if let Err(wait) = limiter.check(client, from_loopback) {
        metrics::counter!(m::CLIENT_RATE_LIMITED_TOTAL).increment(1);
        return ApiError::rate_limited(wait.max(1)).into_response();
    }
    next.run(request).await
}
