//! The state every handler shares.

use crate::http::browser::Perimeter;
use crate::limits::{AuthThrottle, ClientLimiter, ConcurrencyLimiter};
use freerouter::catalog::Provider;
use freerouter::config::Settings;
use freerouter::routing::Engine;
use freerouter::store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    /// The routing engine (catalog snapshot, health board, adapters, writer).
    pub engine: Arc<Engine>,
    pub store: Store,
    /// Upstream concurrency with its bounded queue.
    pub limiter: ConcurrencyLimiter,
    /// Committed streams open at once (`limits.max_open_streams`).
    pub streams: Arc<Semaphore>,
    /// The per-client rate limit (`None` when it is off).
    pub client_limiter: Option<ClientLimiter>,
    /// Failed admin-credential checks, per client and overall.
    pub auth_throttle: AuthThrottle,
    /// The host names and origins the gateway answers to.
    pub perimeter: Perimeter,
    pub metrics: PrometheusHandle,
    pub settings: Settings,
    /// Providers as configured (for provider status and diagnosis runs over HTTP).
    pub providers: Arc<BTreeMap<String, Provider>>,
    /// Set once the catalog has loaded; `/ready` reports it.
    pub catalog_loaded: AtomicBool,
    /// Demo mode: simulated tiers (`demo/…`) on their own database; the console shows a banner.
    pub demo: bool,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
