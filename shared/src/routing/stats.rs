//! What the gateway measures per route: speed (time to first token) and success, for `auto-fast`
//! and `auto-balanced`. In memory: it is relearned quickly after a restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// One route's measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RouteStat {
    /// Exponentially weighted time to first token (or to the answer), in milliseconds.
    pub ttft_ms: f64,
    pub samples: u64,
    pub successes: u64,
    pub failures: u64,
}

/// Weight of the newest sample in the moving average.
const EWMA_ALPHA: f64 = 0.2;

#[derive(Default)]
pub struct RouteStats {
    stats: Mutex<HashMap<String, RouteStat>>,
}

impl RouteStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RouteStat>> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn success(&self, route_id: &str, ttft: Duration) {
        let mut stats = self.lock();
        let stat = stats.entry(route_id.to_string()).or_default();
        let ms = ttft.as_secs_f64() * 1000.0;
        stat.ttft_ms = if stat.samples == 0 {
            ms
        } else {
            stat.ttft_ms + EWMA_ALPHA * (ms - stat.ttft_ms)
        };
        stat.samples += 1;
        stat.successes += 1;
    }

    pub fn failure(&self, route_id: &str) {
        self.lock()
            .entry(route_id.to_string())
            .or_default()
            .failures += 1;
    }

    pub fn get(&self, route_id: &str) -> Option<RouteStat> {
        self.lock().get(route_id).copied()
    }
}
