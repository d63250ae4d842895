//! The embeddable router: FreeRouter's engine in a Rust program, without the HTTP server.
//!
//! [`Router`] is the same engine the gateway runs — the ranking, fallback, quota leases and stream
//! rescue, the health marks and the request log — started from the same configuration, on the same
//! SQLite file. A gateway, a maintainer and any number of programs may share that file: quota spent
//! by one is counted by all (the leases are taken in the store), and a route disabled with
//! `adminctl` or a health reset reaches a running router within `catalog.reload_interval_ms`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), freerouter::RouterError> {
//! use freerouter::{Request, Router};
//! use futures::StreamExt;
//!
//! // freerouter.toml (or built-in providers) plus GROQ_API_KEY, … from the environment.
//! let router = Router::from_config("freerouter.toml").await?;
//!
//! let answer = router.chat(Request::user("Say hello in French.")).await?;
//! println!("{} (served by {})", answer.text(), answer.served.route_id);
//!
//! let mut stream = router.chat_stream(Request::user("Count to five.")).await?;
//! while let Some(chunk) = stream.next().await {
//!     print!("{}", chunk?.text());
//! }
//!
//! router.shutdown().await; // settles the quota leases and flushes the request log
//! # Ok(()) }
//! ```
//!
//! Requests and answers are OpenAI's chat completions and embeddings JSON ([`Request`] wraps a body;
//! the answer's `body` is the upstream's own). What the gateway's HTTP face adds is not here: no
//! client keys, per-client limits or concurrency queue — the program decides how much it sends.
//!
//! The rest of the crate's modules are the binaries' internals and may change between versions;
//! this module is the public face meant to stay.

#![warn(missing_docs)]

mod error;
mod request;
mod response;
mod stream;

pub use error::RouterError;
pub use request::Request;
pub use response::{ChatResponse, EmbeddingsResponse, ServedBy};
pub use stream::{ChatChunk, ChatStream};

use crate::api::embeddings::pack_base64;
use crate::catalog::load_settings;
use crate::config::{ConfigSource, Settings};
use crate::routing::embeddings::{EmbedRequest, EmbeddingsRequest, Encoding};
use crate::routing::priority::Priority;
use crate::routing::{ChatRequest, RouteRequest};
use crate::runtime::Runtime;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The endpoint label the library's requests carry in metrics and the request log.
const ENDPOINT: &str = "library";

/// FreeRouter's routing engine, embedded. Cheap to clone: clones share one engine.
#[derive(Clone)]
pub struct Router {
    runtime: Arc<Runtime>,
}

impl Router {
    /// Starts from a `freerouter.toml` file and the process environment (provider keys such as
    /// `GROQ_API_KEY`, `FREEROUTER__…` overrides, `.env` when present), as the gateway does.
    pub async fn from_config(path: impl AsRef<Path>) -> Result<Self, RouterError> {
        let path = path.as_ref();
        let toml = std::fs::read_to_string(path).map_err(|source| RouterError::ConfigFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mut source = ConfigSource::from_process()?;
        source.toml = Some(toml);
        Self::from_source(source).await
    }

    /// Starts from the process environment alone (and `FREEROUTER_CONFIG` or `./freerouter.toml`
    /// when present), exactly as the gateway reads its configuration.
    pub async fn from_env() -> Result<Self, RouterError> {
        Self::from_source(ConfigSource::from_process()?).await
    }

    /// Starts from a configuration given in full: a TOML document and the variables to read keys
    /// and `FREEROUTER__…` settings from (the process environment is not read).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), freerouter::RouterError> {
    /// use freerouter::{Router, config::ConfigSource};
    /// let source = ConfigSource::from_toml(
    ///     r#"
    ///     storage.database = "./data/freerouter.db"
    ///     [providers.lab]
    ///     base_url = "http://127.0.0.1:9000/v1"
    ///     [[routes]]
    ///     provider = "lab"
    ///     model = "sim-model"
    ///     rank = 1
    ///     "#,
    /// )
    /// .with_var("GROQ_API_KEY", "gsk_…");
    /// let router = Router::from_source(source).await?;
    /// # Ok(()) }
    /// ```
    pub async fn from_source(source: ConfigSource) -> Result<Self, RouterError> {
        let settings = load_settings(&source)?;
        Self::from_settings(settings, source).await
    }

    /// Starts from settings already loaded (and checked with [`crate::catalog::check_settings`]);
    /// `source` still gives the provider keys.
    pub async fn from_settings(
        settings: Settings,
        source: ConfigSource,
    ) -> Result<Self, RouterError> {
        let runtime = Runtime::start(&settings, &source).await?;
        Ok(Self {
            runtime: Arc::new(runtime),
        })
    }

    /// Routes a chat completion and returns the whole answer: the best available route first, the
    /// next one on a failure, as the gateway would. A `stream: true` in the body is ignored here
    /// (use [`Router::chat_stream`]).
    pub async fn chat(&self, request: impl Into<Request>) -> Result<ChatResponse, RouterError> {
        let request = request.into();
        let route = self.route_request(&request, false)?;
        let completion = self.runtime.engine.complete(&route).await?;
        ChatResponse::new(completion.body, completion.served)
    }

    /// Routes a streamed chat completion. It returns once a route has committed (sent its first
    /// content); before that, failures move on to the next route unseen. A stream cut later is
    /// continued on another route where it can be; only when none can does the stream yield an
    /// error ([`RouterError::StreamFailed`]).
    pub async fn chat_stream(
        &self,
        request: impl Into<Request>,
    ) -> Result<ChatStream, RouterError> {
        let request = request.into();
        let route = self.route_request(&request, true)?;
        let committed = self.runtime.engine.open_stream(route).await?;
        Ok(ChatStream::new(committed))
    }

    /// Creates embeddings (OpenAI's `/v1/embeddings` body) within one embedding model: fallback
    /// goes only to providers serving the same model, never to another model's vectors.
    /// `encoding_format: "base64"` is honoured as the gateway does.
    pub async fn embeddings(
        &self,
        request: impl Into<Request>,
    ) -> Result<EmbeddingsResponse, RouterError> {
        let request = request.into();
        let engine = &self.runtime.engine;
        let bytes = serde_json::to_vec(&request.body)?;
        let embeddings = EmbeddingsRequest::parse(&bytes, &engine.fields)?;
        let encoding = embeddings.encoding;
        let embedded = engine
            .embed(&EmbedRequest {
                embeddings,
                request_id: new_request_id(),
                received: Instant::now(),
            })
            .await?;
        let body = match encoding {
            Encoding::Float => embedded.body,
            Encoding::Base64 => {
                pack_base64(&embedded.body).map_err(|error| RouterError::Malformed {
                    message: error.to_string(),
                })?
            }
        };
        EmbeddingsResponse::new(body, embedded.served, embedded.model)
    }

    /// The model names `model` may take: the `auto` modes, then every enabled chat route with a
    /// key, best first (what the gateway's `/v1/models` lists first).
    pub fn models(&self) -> Vec<String> {
        let snapshot = self.runtime.engine.catalog.snapshot();
        let mut names: Vec<String> = ["auto", "auto-fast", "auto-balanced"]
            .into_iter()
            .map(str::to_string)
            .collect();
        names.extend(
            snapshot
                .servable()
                .filter(|route| !crate::routing::embeddings::is_embeddings(route))
                .map(|route| route.route_id.clone()),
        );
        names
    }

    /// Stops the background work: every quota lease is settled (so a gateway on the same file
    /// regains what this program took but did not use), and the request log is flushed. Call it
    /// before the program exits; requests still running should have ended. Dropping a router
    /// without it leaves its leases counted as spent until they expire.
    pub async fn shutdown(&self) {
        self.runtime.shutdown().await;
    }

    fn route_request(&self, request: &Request, stream: bool) -> Result<RouteRequest, RouterError> {
        let mut body = request.body.clone();
        if let Some(object) = body.as_object_mut() {
            object.insert("stream".into(), serde_json::Value::Bool(stream));
        }
        let bytes = serde_json::to_vec(&body)?;
        let chat = ChatRequest::parse(&bytes, &self.runtime.engine.fields)?;
        Ok(RouteRequest {
            chat,
            strict: request.strict,
            session_id: request.session_id.clone(),
            request_id: new_request_id(),
            endpoint: ENDPOINT,
            web_search: false,
            priority: if request.low_priority {
                Priority::Low
            } else {
                Priority::Normal
            },
            exclude: request.exclude.clone(),
            received: Instant::now(),
        })
    }
}

fn new_request_id() -> String {
    format!("req_{}", uuid::Uuid::new_v4().simple())
}
