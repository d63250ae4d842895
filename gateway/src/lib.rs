//! FreeRouter's HTTP face: the OpenAI-compatible gateway.
//!
//! # Layout
//! - [`startup`]: opens the store, loads the catalog, starts background tasks, binds and serves.
//! - [`state`]: what every handler shares.
//! - [`demo`]: demo mode's simulated free tiers, served in-process on a loopback port.
//! - [`serve`]: the connections: header timeout, connection cap, graceful drain.
//! - [`limits`]: the concurrency limit with its bounded wait queue; the per-client rate limit; the
//!   failed-auth throttle.
//! - [`http`]: routes, handlers and the OpenAI-shaped error type.
//! - [`web`]: the web console (server-rendered pages, embedded assets).

pub mod demo;
pub mod http;
pub mod limits;
pub mod serve;
pub mod startup;
pub mod state;
pub mod web;

pub use startup::{RunningGateway, run, spawn};
