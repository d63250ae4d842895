//! Traffic as the pages show it: a dense time series from the store's per-bucket sums, its totals,
//! and the chart.

use super::html::utc_hm;
use super::svg::{Bar, traffic_chart};
use freerouter::store::{Store, StoreError, TrafficBucket};
use freerouter::time::EpochMs;

pub const HOUR_MS: EpochMs = 3_600_000;
pub const DAY_MS: EpochMs = 86_400_000;

/// `buckets` buckets of `bucket_ms` (a multiple of the store's 5-minute rollup) ending with the one
/// holding `now`, empty ones included.
pub async fn series(
    store: &Store,
    now: EpochMs,
    buckets: i64,
    bucket_ms: EpochMs,
) -> Result<Vec<TrafficBucket>, StoreError> {
    let since = now.div_euclid(bucket_ms) * bucket_ms - (buckets - 1) * bucket_ms;
    let found = store.traffic_buckets(since, now + 1, bucket_ms).await?;
    let mut dense: Vec<TrafficBucket> = (0..buckets)
        .map(|i| TrafficBucket {
            start_ms: since + i * bucket_ms,
            ..TrafficBucket::default()
        })
        .collect();
    for bucket in found {
        let i = (bucket.start_ms - since) / bucket_ms;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| dense.get_mut(i)) {
            *slot = bucket;
        }
    }
    Ok(dense)
}

/// The sum of a series (its `start_ms` is the first bucket's).
pub fn total(series: &[TrafficBucket]) -> TrafficBucket {
    series.iter().fold(
        TrafficBucket {
            start_ms: series.first().map_or(0, |b| b.start_ms),
            ..TrafficBucket::default()
        },
        |mut sum, b| {
            sum.requests += b.requests;
            sum.served += b.served;
            sum.fell_back += b.fell_back;
            sum.tokens_in += b.tokens_in;
            sum.tokens_out += b.tokens_out;
            sum
        },
    )
}

/// The series as a chart, labelling every `label_every`-th bucket on the axis.
pub fn chart(caption: &str, series: &[TrafficBucket], label_every: usize) -> String {
    let count = series.len();
    let bars: Vec<Bar> = series
        .iter()
        .enumerate()
        .map(|(i, b)| Bar {
            label: utc_hm(b.start_ms),
            served: b.served,
            failed: b.requests - b.served,
            // Count back from the newest bucket, so "now" always has its label.
            axis: (count - 1 - i).is_multiple_of(label_every.max(1)),
        })
        .collect();
    traffic_chart(caption, &bars)
}
