//! Benchmarks that drive the real gateway against the project's simulator and print what they saw.

pub mod burst;
pub mod load;
pub mod memory;
pub mod overhead;
pub mod peer;
pub mod procfs;
pub mod steady;
pub mod upstream;

/// The `p`-th percentile (0–100) of sorted samples, in milliseconds.
pub fn percentile_ms(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Waits until the current clock minute has at least `seconds` left, so a short run stays inside
/// one of the simulator's fixed minute windows.
pub async fn wait_for_minute_room(seconds: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let into_minute = now.as_secs() % 60;
    if 60 - into_minute < seconds {
        let wait = std::time::Duration::from_millis(
            (60 - into_minute) * 1000 - u64::from(now.subsec_millis()) + 50,
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::percentile_ms;
    use std::time::Duration;

    #[test]
    fn percentiles_take_the_nearest_sample_of_the_sorted_run() {
        let samples: Vec<Duration> = (1..=1_000).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&samples, 0.0), 1.0);
        assert_eq!(percentile_ms(&samples, 99.0), 990.0);
        assert_eq!(percentile_ms(&samples, 100.0), 1_000.0);
        assert_eq!(percentile_ms(&samples[..1], 99.0), 1.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }
}
