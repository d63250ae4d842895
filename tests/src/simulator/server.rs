//! The simulator's HTTP server: routes, body limit, TCP_NODELAY, serving in a task.
//!
//! Real providers put their OpenAI-compatible API under many prefixes (`/openai/v1`,
//! `/v1beta/openai`, `/client/v4/accounts/ACC/ai/v1`, …), so any path ending in `/chat/completions`,
//! `/embeddings` or `/models` is served.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::state::SimState;
use super::{chat, embeddings, models, respond};

/// Large enough for any prompt a context-window test sends.
const BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;

fn router(state: SimState) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state)
}

/// The endpoint a path ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    ChatCompletions,
    Embeddings,
    Models,
}

fn endpoint(path: &str) -> Option<Endpoint> {
    if path.ends_with("/chat/completions") {
        Some(Endpoint::ChatCompletions)
    } else if path.ends_with("/embeddings") {
        Some(Endpoint::Embeddings)
    } else if path.ends_with("/models") {
        Some(Endpoint::Models)
    } else {
        None
    }
}

async fn dispatch(
    State(state): State<SimState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    match (endpoint(path), method) {
        (Some(Endpoint::ChatCompletions), Method::POST) => {
            chat::completions(state, path.to_string(), headers, body).await
        }
        (Some(Endpoint::Embeddings), Method::POST) => {
            embeddings::embeddings(state, path.to_string(), headers, body).await
        }
        (Some(Endpoint::Models), Method::GET) => models::list(&state).into_response(),
        (Some(_), _) => respond::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path",
        ),
        (None, _) => respond::error(StatusCode::NOT_FOUND, "not_found", "unknown path"),
    }
}

/// Binds `addr` and serves in a spawned task; returns the bound address and the task.
pub(crate) async fn spawn(
    addr: SocketAddr,
    state: SimState,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        // Best effort: without it small SSE events may wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
    });
    let app = router(state);
    let task = tokio::spawn(async move {
        // `serve` only returns on a listener error; the simulator then just stops answering.
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_paths_are_recognised_by_their_ending() {
        for path in [
            "/v1/chat/completions",
            "/openai/v1/chat/completions",
            "/v1beta/openai/chat/completions",
            "/compatibility/v1/chat/completions",
            "/client/v4/accounts/ACC/ai/v1/chat/completions",
            "/api/paas/v4/chat/completions",
            "/inference/chat/completions",
        ] {
            assert_eq!(endpoint(path), Some(Endpoint::ChatCompletions), "{path}");
        }
        assert_eq!(endpoint("/v1beta/openai/models"), Some(Endpoint::Models));
        assert_eq!(
            endpoint("/client/v4/accounts/ACC/ai/v1/embeddings"),
            Some(Endpoint::Embeddings)
        );
        assert_eq!(endpoint("/v1/completions"), None);
        assert_eq!(endpoint("/v1/chat/completions/x"), None);
    }
}
