//! An open-loop load: requests started on a fixed schedule (`rate` a second), each on its own,
//! whether or not the earlier ones were answered, so a slow answer cannot hold the next request
//! back and hide its own delay (coordinated omission).
//!
//! Latency runs from the moment a request is sent; how late the generator itself sent it
//! against the schedule is reported beside, so a starved load generator shows.

use super::load::{self, LoadResult, Target};
use super::percentile_ms;
use std::time::Duration;
use tokio::time::Instant;

/// What a steady run saw.
#[derive(Clone, Debug, Default)]
pub struct SteadyResult {
    pub load: LoadResult,
    /// Requests the schedule held.
    pub scheduled: usize,
    /// How late each request was sent against its slot, sorted.
    pub lags: Vec<Duration>,
}

impl SteadyResult {
    /// Pools another steady run of the same load into this one.
    pub fn merge(&mut self, other: SteadyResult) {
        self.load.merge(other.load);
        self.scheduled += other.scheduled;
        self.lags.extend(other.lags);
        self.lags.sort();
    }

    /// The 99th percentile of the lateness of the sends, in ms.
    pub fn lag_p99_ms(&self) -> f64 {
        percentile_ms(&self.lags, 99.0)
    }
}

/// When each request starts, from the start of the run: one every `1 / rate` seconds for
/// `duration`.
pub fn schedule(rate_per_second: f64, duration: Duration) -> Vec<Duration> {
    if rate_per_second <= 0.0 {
        return Vec::new();
    }
    let count = (rate_per_second * duration.as_secs_f64()).floor() as usize;
    (0..count)
        .map(|i| Duration::from_secs_f64(i as f64 / rate_per_second))
        .collect()
}

/// Sends `target` at `rate_per_second` for `duration`, each request on its own task.
pub async fn run(
    http: &reqwest::Client,
    target: &Target,
    rate_per_second: f64,
    duration: Duration,
) -> SteadyResult {
    let slots = schedule(rate_per_second, duration);
    let mut requests = Vec::with_capacity(slots.len());
    let mut lags = Vec::with_capacity(slots.len());
    let started = Instant::now();
    for slot in &slots {
        let due = started + *slot;
        tokio::time::sleep_until(due).await;
        lags.push(Instant::now().saturating_duration_since(due));
        let (http, target) = (http.clone(), target.clone());
        requests.push(tokio::spawn(async move { load::one(&http, &target).await }));
    }
    let mut result = LoadResult::default();
    for request in requests {
        result.record(
            request
                .await
                .unwrap_or_else(|e| Err(format!("the request's task failed: {e}"))),
        );
    }
    result.elapsed = started.elapsed();
    result.latencies.sort();
    lags.sort();
    SteadyResult {
        load: result,
        scheduled: slots.len(),
        lags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_evenly_spaced_over_the_duration() {
        let slots = schedule(100.0, Duration::from_secs(10));
        assert_eq!(slots.len(), 1_000);
        assert_eq!(slots[0], Duration::ZERO);
        assert_eq!(slots[1], Duration::from_millis(10));
        assert_eq!(slots[999], Duration::from_millis(9_990));
        assert!(slots.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn a_rate_that_does_not_divide_a_second_still_spaces_evenly() {
        let slots = schedule(3.0, Duration::from_secs(2));
        assert_eq!(slots.len(), 6);
        let third = Duration::from_secs_f64(1.0 / 3.0);
        assert!(slots[4].abs_diff(third * 4) < Duration::from_micros(1));
        assert!(schedule(0.0, Duration::from_secs(5)).is_empty());
    }
}
