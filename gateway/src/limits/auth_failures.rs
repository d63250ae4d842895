//! The throttle on failed admin-credential checks (the admin token over the admin API, the console
//! sign-in, the metrics token): a client that failed `per_client` times within the window, or all
//! clients together `total` times, gets 429 with `Retry-After` until the oldest of those failures
//! leaves the window. While refused, no check is made at all — else the refusal itself would say
//! which guess was right — so the right token works again once the window has passed.

use freerouter::time::EpochMs;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Clients remembered at most; beyond, a new client's failures count only in the total.
const MAX_CLIENTS: usize = 10_000;

pub struct AuthThrottle {
    per_client: usize,
    total: usize,
    window_ms: EpochMs,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    by_client: HashMap<IpAddr, VecDeque<EpochMs>>,
    all: VecDeque<EpochMs>,
}

fn forget_before(times: &mut VecDeque<EpochMs>, cutoff: EpochMs) {
    while times.front().is_some_and(|&t| t <= cutoff) {
        times.pop_front();
    }
}

impl AuthThrottle {
    pub fn new(per_client: u32, total: u32, window_ms: u64) -> Self {
        Self {
            per_client: per_client.max(1) as usize,
            total: total.max(1) as usize,
            window_ms: EpochMs::try_from(window_ms).unwrap_or(EpochMs::MAX),
            failures: Mutex::new(Failures::default()),
        }
    }

    /// Whether a check may be made now for `client`; else the seconds to wait.
    pub fn admit(&self, client: Option<IpAddr>, now: EpochMs) -> Result<(), u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = now.saturating_sub(self.window_ms);
        forget_before(&mut failures.all, cutoff);
        let mut oldest_blocking = None;
        if failures.all.len() >= self.total {
            oldest_blocking = failures.all.front().copied();
        }
        if let Some(ip) = client
            && let Some(times) = failures.by_client.get_mut(&ip)
        {
            forget_before(times, cutoff);
            if times.len() >= self.per_client {
                let oldest = times.front().copied();
                oldest_blocking = oldest_blocking.max(oldest);
            }
        }
        match oldest_blocking {
            None => Ok(()),
            Some(oldest) => {
                let wait_ms = oldest.saturating_add(self.window_ms).saturating_sub(now);
                Err(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1))
            }
        }
    }

    /// Counts a failed check by `client`.
    pub fn failed(&self, client: Option<IpAddr>, now: EpochMs) {
        metrics::counter!(freerouter::metrics::AUTH_FAILURES_TOTAL).increment(1);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.all.push_back(now);
        while failures.all.len() > self.total {
            failures.all.pop_front();
        }
        let Some(ip) = client else { return };
        let room = failures.by_client.len() < MAX_CLIENTS;
        if let Some(times) = failures.by_client.get_mut(&ip) {
            times.push_back(now);
            while times.len() > self.per_client {
                times.pop_front();
            }
        } else if room {
            failures.by_client.insert(ip, VecDeque::from([now]));
        }
    }

    /// Forgets failures that left the window, and the clients left without any.
    pub fn prune(&self, now: EpochMs) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = now.saturating_sub(self.window_ms);
        forget_before(&mut failures.all, cutoff);
        failures.by_client.retain(|_, times| {
            forget_before(times, cutoff);
            !times.is_empty()
        });
        failures.by_client.shrink_to_fit();
    }

    /// Clients with failures remembered.
    pub fn tracked(&self) -> usize {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn a_client_that_keeps_failing_waits_out_the_window_then_may_try_again() {
        let throttle = AuthThrottle::new(3, 100, 60_000);
        let t0 = 1_000_000;
        for i in 0..3 {
            assert!(throttle.admit(ip(1), t0 + i).is_ok());
            throttle.failed(ip(1), t0 + i);
        }
        assert_eq!(throttle.admit(ip(1), t0 + 10), Err(60));
        assert_eq!(throttle.admit(ip(1), t0 + 30_000), Err(30));
        assert!(
            throttle.admit(ip(2), t0 + 10).is_ok(),
            "another client is not refused"
        );
        assert!(
            throttle.admit(ip(1), t0 + 60_001).is_ok(),
            "the window has passed"
        );
    }

    #[test]
    fn failures_spread_over_many_clients_meet_the_overall_limit() {
        let throttle = AuthThrottle::new(5, 4, 10_000);
        for last in 0..4 {
            throttle.failed(ip(last), 100);
        }
        assert_eq!(throttle.admit(ip(200), 101), Err(10));
        assert!(throttle.admit(ip(200), 10_101).is_ok());
    }

    #[test]
    fn pruning_forgets_clients_whose_failures_left_the_window() {
        let throttle = AuthThrottle::new(5, 1_000_000, 1_000);
        for last in 0..=255 {
            throttle.failed(ip(last), 0);
        }
        throttle.failed(ip(7), 900);
        assert_eq!(throttle.tracked(), 256);
        throttle.prune(1_500);
        assert_eq!(throttle.tracked(), 1);
        throttle.prune(EpochMs::MAX);
        assert_eq!(throttle.tracked(), 0);
    }
}
