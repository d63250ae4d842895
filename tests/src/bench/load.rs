//! A closed-loop load generator: `concurrency` workers send the same request back to back until
//! `total` have been sent, and every latency is kept.

use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one run of the load saw.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Latencies of the requests answered 200, sorted.
    pub latencies: Vec<Duration>,
    /// Requests that failed or were not answered 200.
    pub errors: usize,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn p(&self, percentile: f64) -> f64 {
        super::percentile_ms(&self.latencies, percentile)
    }

    /// Requests answered 200 per second of the run.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One kind of request the load repeats.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub body: Bytes,
    /// Measure the time to the first content token of a stream rather than the whole answer.
    pub first_token: bool,
}

/// Sends `total` requests from `concurrency` workers and keeps their latencies.
pub async fn run(
    http: &reqwest::Client,
    target: &Target,
    concurrency: usize,
    total: usize,
) -> LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, target, next) = (http.clone(), target.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while next.fetch_add(1, Ordering::Relaxed) < total {
                match one(&http, &target).await {
                    Some(latency) => latencies.push(latency),
                    None => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut result = LoadResult::default();
    for worker in workers {
        if let Ok((latencies, errors)) = worker.await {
            result.latencies.extend(latencies);
            result.errors += errors;
        }
    }
    result.elapsed = started.elapsed();
    result.latencies.sort();
    result
}

/// One request: its latency (to the end of the answer, or to its first content token), or `None`
/// when it did not succeed.
async fn one(http: &reqwest::Client, target: &Target) -> Option<Duration> {
    let sent = Instant::now();
    let response = http
        .post(&target.url)
        .header("content-type", "application/json")
        .body(target.body.clone())
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        let _ = response.bytes().await;
        return None;
    }
    if !target.first_token {
        response.bytes().await.ok()?;
        return Some(sent.elapsed());
    }
    let mut stream = response.bytes_stream();
    let mut seen = Vec::new();
    let mut first_token = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        seen.extend_from_slice(&chunk);
        if first_token.is_none() && has_content_token(&seen) {
            first_token = Some(sent.elapsed());
        }
    }
    first_token
}

/// Whether the SSE text so far holds a chunk with a non-empty `content` delta.
fn has_content_token(seen: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"content\":\"";
    seen.windows(NEEDLE.len())
        .enumerate()
        .any(|(at, window)| window == NEEDLE && seen.get(at + NEEDLE.len()) != Some(&b'"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_content_delta_is_not_a_token() {
        assert!(!has_content_token(
            br#"data: {"choices":[{"delta":{"role":"assistant","content":""}}]}"#
        ));
        assert!(has_content_token(
            br#"data: {"choices":[{"delta":{"content":"Hi"}}]}"#
        ));
    }
}
