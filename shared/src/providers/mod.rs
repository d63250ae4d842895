//! Provider adapters: one trait, the OpenAI-compatible adapter, and the parsing every adapter shares.

mod failure;
mod openai;
pub mod ratelimit;
pub mod sse;

pub use failure::{FailureKind, UpstreamFailure, classify_error_response};
pub use openai::OpenAiCompatible;
pub use ratelimit::RateLimitInfo;
pub use sse::{SseEvent, SseParser};

use crate::catalog::{ApiKey, Provider};
use crate::time::EpochMs;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;

/// One request to one upstream.
pub struct UpstreamCall<'a> {
    pub provider: &'a Provider,
    pub key: Option<&'a ApiKey>,
    /// The full chat body, `model` already set to the upstream id.
    pub body: serde_json::Value,
    pub stream: bool,
    /// No response headers within this ⇒ [`FailureKind::HeaderTimeout`].
    pub header_timeout: Duration,
    /// A non-streaming body silent this long ⇒ [`FailureKind::HeaderTimeout`]'s sibling, `StreamIdle`.
    pub idle_timeout: Duration,
    pub max_body_bytes: usize,
    pub now: EpochMs,
}

/// Why an upstream stream stopped yielding events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamFault {
    #[error("upstream connection failed mid-stream: {0}")]
    Io(String),
    #[error("upstream event larger than the bound")]
    TooLarge,
}

/// Upstream SSE events as they arrive.
pub type EventStream = BoxStream<'static, Result<SseEvent, StreamFault>>;

/// A 2xx answer.
pub enum UpstreamReply {
    Complete {
        body: Bytes,
        json: serde_json::Value,
        rate: RateLimitInfo,
    },
    Stream {
        events: EventStream,
        rate: RateLimitInfo,
    },
}

/// What every provider adapter does: send one chat request and report the answer or a classified failure.
/// Provider quirks (URL shapes, auth, body fixes, error formats) live in the adapter for that provider.
pub trait ProviderAdapter: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    fn chat<'a>(
        &'a self,
        http: &'a reqwest::Client,
        call: UpstreamCall<'a>,
    ) -> BoxFuture<'a, Result<UpstreamReply, UpstreamFailure>>;
}

/// The adapter registered under `name` (as written in the catalog or config).
pub fn adapter_for(name: &str) -> Option<Arc<dyn ProviderAdapter>> {
    match name {
        "openai" => Some(Arc::new(OpenAiCompatible)),
        _ => None,
    }
}

/// Building the HTTP client failed (TLS setup).
pub type HttpClientError = reqwest::Error;

/// The HTTP client adapters share: rustls with ring, connect timeout, no overall timeout
/// (the routing engine owns the deadlines), `TCP_NODELAY` for streams.
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, HttpClientError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("freerouter/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Reads a body up to `max` bytes, each chunk within `idle`.
pub(crate) async fn read_bounded(
    response: &mut reqwest::Response,
    max: usize,
    idle: Duration,
) -> Result<Bytes, FailureKind> {
    let mut out = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(idle, response.chunk()).await {
            Err(_) => return Err(FailureKind::StreamIdle),
            Ok(Err(_)) => return Err(FailureKind::Reset),
            Ok(Ok(None)) => return Ok(out.freeze()),
            Ok(Ok(Some(chunk))) => {
                if out.len() + chunk.len() > max {
                    return Err(FailureKind::BodyTooLarge);
                }
                out.extend_from_slice(&chunk);
            }
        }
    }
}
