//! The project's own upstream: an OpenAI-compatible fake provider for end-to-end tests and benchmarks.
//!
//! ```no_run
//! # async fn demo() {
//! use freerouter_tests::simulator::{Behavior, Simulator};
//! let sim = Simulator::start().await;
//! sim.model("sim-a").answer("Hi there.").then(Behavior::rate_limited(Some("1")));
//! // point a provider at sim.base_url(); the first call gets a 429, the next ones "Hi there."
//! # }
//! ```
//!
//! # Paths
//! `POST` on any path ending in `/chat/completions` or `/embeddings` and `GET` on any path ending in
//! `/models` are served, so one simulator stands in for Groq (`/openai/v1`), Gemini (`/v1beta/openai`), Cloudflare
//! (`/client/v4/accounts/ACC/ai/v1`) and the rest: see [`Simulator::url`].
//!
//! # Rate limits
//! [`Simulator::limit_key`] and [`ModelHandle::limit`] set free-tier [`KeyLimits`], enforced like a
//! real provider in fixed, aligned windows of the wall clock: the minute window is
//! `[floor(now_ms / 60000) * 60000, +60000)`, the day window starts at the latest UTC midnight +
//! [`Simulator::day_reset_minute`]. A request is refused with a 429 (`rate_limit_exceeded`,
//! `retry-after` in whole seconds until the blocking window ends, `x-ratelimit-*` headers) when one
//! more request, or its prompt tokens, would exceed a limit; refused requests are not counted.
//! Admitted requests count 1 request and their prompt tokens on arrival, their completion tokens when
//! the answer is produced (exactly the `usage` the response reports). Successful responses carry
//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the tightest limits, none without limits.
//!
//! # Layout
//! - [`Simulator`] (here): start, stop on drop, inspect calls.
//! - `model`: [`ModelHandle`] settings and scripts, [`RecordedRequest`]s.
//! - `behavior`: [`Behavior`], what a call does (answer, fail, misbehave on the wire).
//! - `limits`: [`KeyLimits`], the windows and counters of the rate limits.
//! - `dialect`: [`Dialect`], each provider's form of rate-limit headers and quota refusals.
//! - `state`: what the handlers and the handle share.
//! - `server`: routes and serving; `chat`, `embeddings` and `models`: the three endpoints
//!   (`embeddings`: deterministic vectors, [`embedding_of`]).
//! - `request`: the request fields acted on; `reply`, `completion`, `stream`: the answer bodies;
//!   `respond`: HTTP responses; `text`: word splitting and token estimates; `faults`: huge, dripped,
//!   flooded and corrupt bodies.
//! - [`cli`]: the options of the `freerouter-simulator` binary.

mod behavior;
mod chat;
pub mod cli;
mod completion;
mod dialect;
mod embeddings;
mod faults;
mod limits;
mod model;
mod models;
mod reply;
mod request;
mod respond;
mod server;
mod state;
mod stream;
#[cfg(test)]
mod tests;
mod text;

use std::net::{Ipv4Addr, SocketAddr};

use serde_json::Value;
use tokio::task::JoinHandle;

pub use behavior::Behavior;
pub use dialect::Dialect;
pub use embeddings::{DEFAULT_DIMENSIONS, embedding_of, token_embedding_of};
pub use faults::flood_text;
pub use limits::KeyLimits;
pub use model::{ModelHandle, RecordedRequest};
use state::SimState;

/// A running simulator. Dropping it stops the server: no new connections, hangs and stalls end.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    state: SimState,
    server: JoinHandle<()>,
}

impl Simulator {
    /// Starts on 127.0.0.1 and an ephemeral port.
    pub async fn start() -> Simulator {
        Simulator::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the simulator to 127.0.0.1:0")
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Simulator> {
        let state = SimState::new();
        let (addr, server) = server::spawn(addr, state.clone()).await?;
        Ok(Simulator {
            addr,
            state,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, what a provider's base URL is set to.
    pub fn base_url(&self) -> String {
        self.url("/v1")
    }

    /// `http://ADDR{prefix}`: a provider's base URL with its own path, e.g.
    /// `sim.url("/client/v4/accounts/ACC/ai/v1")`; every prefix is served.
    pub fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    /// The model with this id, created and listed in `/models` if new.
    pub fn model(&self, id: &str) -> ModelHandle {
        ModelHandle::new(self.state.model(id))
    }

    /// Chat and embeddings requests received for this model (0 for an unknown id).
    pub fn calls(&self, model_id: &str) -> usize {
        self.state.find(model_id).map_or(0, |m| m.calls())
    }

    /// Every chat completions and embeddings request received, on any path, including invalid
    /// ones, unknown models and those refused by a rate limit.
    pub fn total_calls(&self) -> usize {
        self.state.total_calls()
    }

    /// The chat and embeddings requests this model received, in order (empty while recording is
    /// off).
    pub fn requests(&self, model_id: &str) -> Vec<RecordedRequest> {
        self.state
            .find(model_id)
            .map(|m| m.requests())
            .unwrap_or_default()
    }

    /// Hides the model from `/models`; it still answers.
    pub fn unlist(&self, model_id: &str) {
        if let Some(model) = self.state.find(model_id) {
            model.unlist();
        }
    }

    /// Appends an arbitrary entry to `/models`.
    pub fn list_extra(&self, entry: Value) {
        self.state.add_listing(entry);
    }

    /// Limits for requests bearing this key (`Authorization: Bearer KEY`), across all models of this
    /// simulator; requests without a key count under `""`. Keys without limits are unlimited;
    /// `KeyLimits::default()` lifts a key's limits.
    pub fn limit_key(&self, key: &str, limits: KeyLimits) {
        self.state.limit_key(key, limits);
    }

    /// Minutes after UTC midnight when this simulator's day windows reset (default 0).
    pub fn day_reset_minute(&self, minute: u32) {
        self.state.set_day_reset_minute(minute);
    }

    /// Speaks about limits as this provider does: the shape of its rate-limit headers and of its
    /// 429s when a limit is hit (see [`Dialect`]; OpenAI's by default).
    pub fn speak(&self, dialect: Dialect) {
        self.state.set_dialect(dialect);
    }

    /// How many 429s the simulator sent because a limit was hit (scripted [`Behavior`] 429s not
    /// counted).
    pub fn limit_refusals(&self) -> usize {
        self.state.limit_refusals()
    }

    /// Chat and embeddings requests answered 2xx.
    pub fn served(&self) -> usize {
        self.state.served()
    }

    /// Whether request bodies and headers are kept (default on). Long benchmark runs turn it off;
    /// calls are counted either way.
    pub fn set_recording(&self, on: bool) {
        self.state.set_recording(on);
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.state.shut_down();
        self.server.abort();
    }
}
