//! Provider adapters: one trait of hooks, one file per provider with quirks, and the HTTP flow,
//! SSE reader, rate-limit header parser and failure classification every adapter shares.

pub mod answer;
pub mod body;
mod client;
mod cloudflare;
mod cohere;
pub mod embeddings;
mod failure;
mod gemini;
mod groq;
mod http;
mod mistral;
mod nvidia;
mod ollama_cloud;
mod openai;
mod openrouter;
pub mod ratelimit;
pub mod spent;
pub mod sse;
pub mod web_search;
mod zai;

pub use client::{HttpClient, HttpClientError, SendError, UpstreamRequest, UpstreamResponse};
pub use embeddings::{EmbeddingsReply, send_embeddings};
pub use failure::{FailureKind, UpstreamFailure, classify_error_response};
pub use http::{list_models, send_chat};
pub use openai::OpenAiCompatible;
pub use ratelimit::{RateLimitInfo, WindowHint};
pub use spent::{Spent, SpentWindow};
pub use sse::{SseEvent, SseParser};

use crate::catalog::{ApiKey, Provider};
use crate::time::EpochMs;
use body::JsonObject;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// One request to one upstream.
pub struct UpstreamCall<'a> {
    pub provider: &'a Provider,
    pub key: Option<&'a ApiKey>,
    /// The full chat body, `model` already set to the upstream id.
    pub body: JsonObject,
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
    /// The body exactly as received, and what it carries.
    Complete {
        body: Bytes,
        info: answer::CompletionInfo,
        rate: RateLimitInfo,
    },
    Stream {
        events: EventStream,
        rate: RateLimitInfo,
    },
}

/// What differs between providers. Every adapter implements this one trait; the defaults are
/// OpenAI's behaviour, and each provider's file overrides only its quirks. The HTTP flow itself is
/// shared ([`send_chat`], [`send_embeddings`], [`list_models`]).
pub trait ProviderAdapter: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Where chat requests go.
    fn chat_url(&self, provider: &Provider) -> String {
        format!("{}/chat/completions", provider.base_url)
    }

    /// Where the model listing is.
    fn models_url(&self, provider: &Provider) -> String {
        format!("{}/models", provider.base_url)
    }

    /// Authentication and any headers the provider asks for.
    fn headers(&self, request: UpstreamRequest, key: Option<&ApiKey>) -> UpstreamRequest {
        match key {
            Some(key) => request.bearer_auth(key.secret.expose()),
            None => request,
        }
    }

    /// Fixes a body before it is sent (fields the provider rejects, shapes it insists on).
    fn prepare_body(&self, _body: &mut JsonObject) {}

    /// Request fields this provider understands beyond OpenAI's chat completion fields
    /// (`routing::fields::CHAT_FIELDS`): a client's field reaches this provider only if it is in
    /// one of the two lists, or the owner names it in `routing.passthrough_fields`. Never a field
    /// that routes to paid models or bills (OpenRouter's `models`, `route`, `provider`, `plugins`).
    fn extra_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Asks for a web search in the provider's own form. The default is OpenAI's: the
    /// `web_search_preview` tool, forced with `tool_choice`.
    fn request_web_search(&self, body: &mut JsonObject) {
        body.edit(&["tools", "tool_choice"], web_search::openai_tool);
    }

    /// The assistant message that asks the model to continue `partial` (a stream rescue).
    fn prefill_message(&self, partial: &str) -> Value {
        serde_json::json!({"role": "assistant", "content": partial})
    }

    /// Refines how a failure is understood (a provider's own error codes, its form of saying
    /// which quota is spent and until when). `now` turns absolute resets into waits.
    fn refine_failure(&self, failure: UpstreamFailure, _now: EpochMs) -> UpstreamFailure {
        failure
    }

    /// Whether the rate-limit headers of this provider's answers describe the key across all its
    /// models (OpenRouter's one allowance for every `:free` model) rather than the model called.
    fn rate_headers_cover_the_key(&self) -> bool {
        false
    }

    /// The id requests use for a model the listing calls `listed`.
    fn model_id_from_listing(&self, listed: &str) -> String {
        listed.to_string()
    }

    /// Where embeddings requests go.
    fn embeddings_url(&self, provider: &Provider) -> String {
        format!("{}/embeddings", provider.base_url)
    }

    /// Fixes an embeddings body before it is sent (a field under the provider's own name, a field
    /// it refuses, one it requires). The body holds OpenAI's embeddings fields (`input`,
    /// `dimensions`, `user`) and those of [`ProviderAdapter::embedding_fields`].
    fn prepare_embeddings_body(&self, _body: &mut JsonObject) {}

    /// Embeddings request fields this provider understands beyond OpenAI's
    /// (`routing::fields::EMBEDDING_FIELDS`), as [`ProviderAdapter::extra_fields`] for chat.
    fn embedding_fields(&self) -> &'static [&'static str] {
        &[]
    }
}

/// The adapter registered under `name` (as written in the catalog or config).
pub fn adapter_for(name: &str) -> Option<Arc<dyn ProviderAdapter>> {
    let adapter: Arc<dyn ProviderAdapter> = match name {
        "openai" => Arc::new(OpenAiCompatible),
        "groq" => Arc::new(groq::Groq),
        "gemini" => Arc::new(gemini::Gemini),
        "openrouter" => Arc::new(openrouter::OpenRouter),
        "mistral" => Arc::new(mistral::Mistral),
        "nvidia" => Arc::new(nvidia::Nvidia),
        "cohere" => Arc::new(cohere::Cohere),
        "cloudflare" => Arc::new(cloudflare::Cloudflare),
        "zai" => Arc::new(zai::Zai),
        "ollama-cloud" => Arc::new(ollama_cloud::OllamaCloud),
        _ => return None,
    };
    Some(adapter)
}

/// Every adapter name [`adapter_for`] knows.
pub const ADAPTERS: &[&str] = &[
    "openai",
    "groq",
    "gemini",
    "openrouter",
    "mistral",
    "nvidia",
    "cohere",
    "cloudflare",
    "zai",
    "ollama-cloud",
];

/// The HTTP client adapters share: rustls, connect timeout, no overall timeout (the routing
/// engine owns the deadlines), `TCP_NODELAY` for streams, and no redirects (see
/// [`HttpClient`]).
pub fn http_client(connect_timeout: Duration) -> Result<HttpClient, HttpClientError> {
    HttpClient::new(connect_timeout)
}

/// Reads a body up to `max` bytes, each chunk within `idle`.
pub(crate) async fn read_bounded(
    response: &mut UpstreamResponse,
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
