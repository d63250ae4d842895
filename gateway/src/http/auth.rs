//! Client API keys: when `auth.api_keys` is set, every `/v1/*` request must carry one
//! (`Authorization: Bearer …` or `x-api-key`), compared in constant time.

use crate::http::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Compares two secrets without revealing where they differ: both are hashed first, so the
/// comparison does not even depend on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The token a request presents, if any.
fn presented(request: &Request) -> Option<&str> {
    let headers = request.headers();
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Lets the request through when no client keys are configured or it carries one of them.
pub async fn require_client_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let keys = &state.settings.auth.api_keys;
    if keys.is_empty() {
        return next.run(request).await;
    }
    let allowed = presented(&request).is_some_and(|token| {
        // Every key is compared, so the time taken does not say which one matched.
        keys.iter().fold(false, |found, key| {
            constant_time_eq(token, key.expose()) | found
        })
    });
    if allowed {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "this gateway requires a client API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_secrets_match_and_others_do_not() {
        assert!(constant_time_eq("sk-client-1", "sk-client-1"));
        assert!(!constant_time_eq("sk-client-1", "sk-client-2"));
        assert!(!constant_time_eq("sk-client-1", "sk-client-10"));
        assert!(!constant_time_eq("", "x"));
    }
}
