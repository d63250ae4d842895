//! Credentials at the door. When `auth.api_keys` is set, every `/v1/*` request must carry one
//! (`Authorization: Bearer …` or `x-api-key`), compared in constant time; the admin API under
//! `/v1/gateway/` takes the admin token as well, and no other route does unless it is also listed
//! as a client key. Every check of an admin credential goes through the failed-auth throttle.
//! The [`Caller`] found here is what the per-client limit counts by.

use crate::http::error::ApiError;
use crate::limits::ClientId;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use freerouter::config::Secret;
use freerouter::metrics as m;
use freerouter::routing::priority::Priority;
use freerouter::time::now_ms;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};

/// Compares two secrets without revealing where they differ: both are hashed first, so the
/// comparison does not even depend on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The token a request presents, if any, without surrounding whitespace.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// The index of the client key `token` is. Every key is compared, so the time taken does not
/// say which one matched.
pub fn matching_key(keys: &[Secret], token: &str) -> Option<usize> {
    keys.iter().enumerate().fold(None, |found, (i, key)| {
        if constant_time_eq(token, key.expose()) {
            Some(i)
        } else {
            found
        }
    })
}

/// The peer's address, as the server recorded it for the connection.
pub fn peer(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}

/// Who sent a request, once its credentials were checked.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// What the per-client limit counts it by.
    pub client: ClientId,
    pub from_loopback: bool,
    /// It presented the admin token (and it was right).
    pub admin: bool,
}

/// How a throttled check of a secret came out.
pub enum SecretCheck {
    Right,
    /// None was presented (no guess was made; nothing is counted).
    Missing,
    Wrong,
    /// Too many wrong ones lately: not checked; retry after this many seconds.
    Throttled(u64),
}

/// Checks `presented` against `expected` unless this client (or everyone) failed too often lately.
pub fn check_secret(
    state: &AppState,
    client: Option<IpAddr>,
    presented: Option<&str>,
    expected: &Secret,
) -> SecretCheck {
    let Some(presented) = presented else {
        return SecretCheck::Missing;
    };
    let now = now_ms();
    if let Err(wait) = state.auth_throttle.admit(client, now) {
        metrics::counter!(m::AUTH_THROTTLED_TOTAL).increment(1);
        return SecretCheck::Throttled(wait);
    }
    if constant_time_eq(presented, expected.expose()) {
        SecretCheck::Right
    } else {
        state.auth_throttle.failed(client, now);
        SecretCheck::Wrong
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

fn invalid_api_key(admin_surface: bool) -> Response {
    let message = if admin_surface {
        "this gateway requires a client API key or, on /v1/gateway/, the admin token: send \
         `Authorization: Bearer <key>` or `x-api-key: <key>`"
    } else {
        "this gateway requires a client API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`"
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", message).into_response()
}

/// Lets a `/v1/*` request through when no client keys are configured or it carries one of them
/// (or, on the admin API, the admin token), and records who it is.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = peer(request.extensions()).map(|p| p.ip());
    let by_peer = ip.map_or(ClientId::Unknown, ClientId::peer);
    let auth = &state.settings.auth;
    let token = presented(request.headers());
    let mut admin = false;
    let mut low_priority = false;
    let client = if auth.api_keys.is_empty() {
        by_peer
    } else if let Some(i) = token.and_then(|t| matching_key(&auth.api_keys, t)) {
        low_priority = token.is_some_and(|t| matching_key(&auth.low_priority_keys, t).is_some());
        ClientId::Key(i)
    } else {
        let admin_surface = is_admin_surface(request.uri().path());
        let Some(admin_token) = auth.admin_token.as_ref().filter(|_| admin_surface) else {
            return invalid_api_key(admin_surface);
        };
        match check_secret(&state, ip, token, admin_token) {
            SecretCheck::Right => {
                admin = true;
                by_peer
            }
            SecretCheck::Throttled(wait) => return ApiError::auth_throttled(wait).into_response(),
            SecretCheck::Missing | SecretCheck::Wrong => return invalid_api_key(true),
        }
    };
    // A batch key's requests are low priority unless they say otherwise.
    if low_priority && !request.headers().contains_key(Priority::HEADER) {
        request.headers_mut().insert(
            Priority::HEADER,
            axum::http::HeaderValue::from_static("low"),
        );
    }
    request.extensions_mut().insert(Caller {
        client,
        from_loopback: ip.is_some_and(is_loopback),
        admin,
    });
    next.run(request).await
}

/// Admin changes over HTTP need `Authorization: Bearer <admin token>`; without an admin token
/// configured, the surface is read-only and says how to enable it.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.settings.auth.admin_token else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_read_only",
            "the HTTP admin surface is read-only: set FREEROUTER__AUTH__ADMIN_TOKEN to enable changes over \
             HTTP, or use adminctl on the database file",
        )
        .into_response();
    };
    if request
        .extensions()
        .get::<Caller>()
        .is_some_and(|c| c.admin)
    {
        return next.run(request).await;
    }
    let ip = peer(request.extensions()).map(|p| p.ip());
    match check_secret(&state, ip, presented(request.headers()), token) {
        SecretCheck::Right => next.run(request).await,
        SecretCheck::Throttled(wait) => ApiError::auth_throttled(wait).into_response(),
        SecretCheck::Missing | SecretCheck::Wrong => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "this change needs the admin token: send `Authorization: Bearer <admin token>`",
        )
        .into_response(),
    }
}

/// The admin API: `/v1/gateway/…`, and the original FreeRouter's `/v1/providers/status`.
pub fn is_admin_surface(path: &str) -> bool {
    path.starts_with("/v1/gateway/") || path == "/v1/providers/status"
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

    #[test]
    fn whitespace_around_a_token_does_not_make_it_another_token() {
        let keys = [Secret::new("sk-a"), Secret::new("sk-b")];
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer   sk-b  ".parse().unwrap());
        assert_eq!(
            presented(&headers).and_then(|t| matching_key(&keys, t)),
            Some(1)
        );
        headers.insert("authorization", "bearer sk-a".parse().unwrap());
        assert_eq!(
            presented(&headers).and_then(|t| matching_key(&keys, t)),
            Some(0)
        );
        headers.insert("authorization", "Bearer sk-c".parse().unwrap());
        assert_eq!(
            presented(&headers).and_then(|t| matching_key(&keys, t)),
            None
        );
        headers.insert("authorization", "Bearer  ".parse().unwrap());
        assert_eq!(presented(&headers), None, "a blank token is no token");
    }
}
