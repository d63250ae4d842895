//! FreeRouter's domain and engine: everything the gateway, the maintainer and adminctl share, and
//! [`Router`], the engine embedded in a Rust program without the HTTP server (see [`router`]).
//!
//! # Layout
//! - [`admin`]: the operations adminctl and the admin API share.
//! - [`api`]: client APIs besides chat completions (Anthropic's Messages, Responses, legacy
//!   completions), translated to chat above routing; the embeddings answer's encodings.
//! - [`config`]: typed, layered settings (defaults < `freerouter.toml` < `FREEROUTER__…` env), secrets.
//! - [`store`]: the one SQLite file every process opens; all SQL lives here.
//! - [`catalog`]: providers and ranked routes, the built-in default catalog, the live snapshot.
//! - [`providers`]: the adapter trait, the OpenAI-compatible adapter, SSE and rate-limit header parsing.
//! - [`quota`]: the quota ledger — reserve, settle, release — and its windows.
//! - [`health`]: route and key health, cooldowns, computed with time as a parameter.
//! - [`routing`]: the engine — candidates by rank, the failure table, fallback, streaming rescue;
//!   embeddings within one model.
//! - [`router`]: the public face for embedding — [`Router`], requests, answers, streams, errors.
//! - [`runtime`]: the engine assembled with its background work (the gateway's and the router's).
//! - [`maintenance`]: the maintainer's jobs — diagnosis, supervisor, auto-maintenance, keys, retention.
//! - [`metrics`]: metric names and their descriptions.
//! - [`telemetry`], [`shutdown`], [`time`]: process plumbing.

pub mod admin;
pub mod api;
pub mod catalog;
pub mod config;
pub mod health;
pub mod maintenance;
pub mod metrics;
pub mod providers;
pub mod quota;
pub mod router;
pub mod routing;
pub mod runtime;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod time;

pub use router::{
    ChatChunk, ChatResponse, ChatStream, EmbeddingsResponse, Request, Router, RouterError, ServedBy,
};
