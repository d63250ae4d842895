//! FreeRouter's maintainer: the background jobs that keep the shared catalog true.
//!
//! # Layout
//! - [`scheduler`]: named jobs on intervals under one cancellation token, stopping between runs.
//! - [`jobs`]: the jobs (diagnosis, key re-check, retention) as thin faces on `freerouter::maintenance`.
//! - [`http`]: the maintainer's own `/health` and `/metrics`.
//! - [`startup`]: opens the store, starts all of it, stops it cleanly.

pub mod http;
pub mod jobs;
pub mod scheduler;
pub mod startup;

pub use startup::{RunningMaintainer, run, spawn};
