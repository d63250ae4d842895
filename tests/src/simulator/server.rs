//! The simulator's HTTP server: routes, body limit, TCP_NODELAY, serving in a task.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::state::SimState;
use super::{chat, models, respond};

/// Large enough for any prompt a context-window test sends.
const BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;

fn router(state: SimState) -> Router {
    Router::new()
        .route("/v1/models", get(models::list))
        .route("/v1/chat/completions", post(chat::completions))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state)
}

async fn not_found() -> Response {
    respond::error(StatusCode::NOT_FOUND, "not_found", "unknown path")
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
