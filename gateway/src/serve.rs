//! Serving client connections: hyper's HTTP/1 with a timer, so a client must send a request's
//! header within `server.header_read_timeout_ms` (slow-header clients and idle keep-alive
//! connections are closed); at most `server.max_connections` connections at once, one more
//! answered `503 too_many_connections` at once and closed; `TCP_NODELAY` on every connection (SSE
//! chunks are not held for the client's delayed ACK); each request carries its peer as
//! `ConnectInfo<SocketAddr>`. On shutdown, the listener closes, idle connections close, and
//! requests in flight get `server.shutdown_grace_s` to finish before their connections are dropped.

use axum::Router;
use axum::extract::ConnectInfo;
use freerouter::config::ServerSettings;
use freerouter::metrics as m;
use freerouter::shutdown::CancellationToken;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Connections being refused at once; beyond this a refused connection is closed unanswered (a
/// flood of connections gets no more of our time than closing them).
const MAX_REFUSING: usize = 64;

#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// How long requests in flight may finish once shutdown starts.
    pub grace: Duration,
}

impl ServeOptions {
    pub fn from_settings(server: &ServerSettings) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
            max_connections: server.max_connections,
            grace: Duration::from_secs(server.shutdown_grace_s),
        }
    }
}

/// One open connection: its place under the cap, and the gauge, given back however it ends.
struct OpenConnection {
    _slot: OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(slot: OwnedSemaphorePermit) -> Self {
        metrics::gauge!(m::CONNECTIONS_OPEN).increment(1.0);
        Self { _slot: slot }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(m::CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: CancellationToken,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!(m::CONNECTIONS_REFUSED_TOTAL).increment(1);
            if let Ok(turn) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(tcp).await;
                    drop(turn);
                });
            }
            continue;
        };
        let open = OpenConnection::new(slot);
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let http = http.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _open = open;
            let connection = http.serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(options.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown grace ran out with requests still open");
        connections.shutdown().await;
    }
}

/// A failed accept: a connection that went away before we took it is nothing; anything else
/// (out of file descriptors, say) gets a pause, so the loop does not spin on it.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What a connection over the cap is told, before it is closed.
static REFUSAL: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let body = serde_json::json!({"error": {
        "message": "the gateway is at its connection limit (server.max_connections); retry shortly",
        "type": "server_error",
        "code": "too_many_connections",
        "param": null,
    }})
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Answers 503 and closes. What the client already sent is read and dropped first (briefly, and
/// only so much): closing a socket with unread input resets it, and the client could lose the answer.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        tcp.write_all(&REFUSAL).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0;
        while read < 64 * 1024 {
            match tcp.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}
