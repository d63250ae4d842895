//! The ledger against real SQLite files, with time as a parameter: windows and resets as before
//! leases (`windows.rs`), what leases add — blocks, committed marks, expiry, the day reset
//! (`leases.rs`) — several processes on one file (`processes.rs`), a stalled store and shutdown
//! (`stalls.rs`). The helpers here are shared.

mod leases;
mod processes;
mod stalls;
mod windows;

use super::window::day_window_start;
use super::*;
use crate::catalog::{Origin, Provider, Route, RouteSeed};
use crate::config::{Limits, QuotaSettings};
use crate::store::Store;
use crate::time::EpochMs;
use std::time::Duration;

pub(super) const MIDNIGHT: EpochMs = 1_798_761_600_000; // 2027-01-01T00:00:00Z
pub(super) const TTL: EpochMs = 5_000;

pub(super) fn settings() -> QuotaSettings {
    QuotaSettings {
        // Generous: these tests are about the ledger's counts, not about a slow machine.
        reserve_timeout_ms: 10_000,
        lease_ttl_ms: TTL as u64,
        max_lease_requests: 256,
        refresh_ms: 1_000,
        shutdown_wait_ms: 5_000,
    }
}

pub(super) fn provider(limits: Limits, day_reset_minute: u32) -> Provider {
    Provider {
        limits,
        day_reset_minute,
        ..Provider::keyless("p", "http://127.0.0.1:9/v1")
    }
}

pub(super) fn route(model: &str, limits: Limits) -> Route {
    RouteSeed {
        provider: "p".into(),
        model: model.into(),
        rank: Some(1),
        limits: Some(limits),
        ..RouteSeed::default()
    }
    .into_route(Origin::Manual, true, 1)
}

pub(super) async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("q.db"), Duration::from_secs(5))
        .await
        .unwrap()
}

pub(super) async fn ledger(dir: &tempfile::TempDir) -> (Ledger, Store) {
    let store = open(dir).await;
    (Ledger::new(store.clone(), settings()), store)
}

pub(super) fn rpm(n: u64) -> Limits {
    Limits {
        rpm: Some(n),
        ..Limits::default()
    }
}

pub(super) fn granted(grant: &Grant) -> bool {
    matches!(grant, Grant::Granted(_))
}

/// Waits until the ledger's writes so far have landed (a write queued later lands after them).
pub(super) async fn written(store: &Store) {
    let _ = store
        .grant_lease(crate::store::LeaseAsk {
            provider: "flush".into(),
            key_id: "flush".into(),
            route_id: "flush".into(),
            holder: "flush".into(),
            seq: rand::random::<i64>().abs(),
            now: 0,
            expires_ms: 0,
            day_start: 0,
            requests: 0,
            tokens: 0,
            min_tokens: 0,
            committed_requests: 0,
            committed_tokens: 0,
            key_limits: Limits::default(),
            route_limits: Limits::default(),
        })
        .await;
}

pub(super) async fn key_usage(store: &Store, now: EpochMs) -> super::window::Usage {
    store
        .usage("p", "k", None, now, day_window_start(now, 0), None)
        .await
        .unwrap()
}

pub(super) fn route_seed(model: &str) -> RouteSeed {
    RouteSeed {
        provider: "p".into(),
        model: model.into(),
        display_name: None,
        rank: Some(1),
        score: None,
        aliases: Vec::new(),
        context_window: None,
        max_output: None,
        tags: Vec::new(),
        limits: None,
    }
}
