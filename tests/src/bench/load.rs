//! A closed-loop load generator: `concurrency` workers send the same request back to back for a
//! fixed time, and every latency is kept.

use bytes::Bytes;
use std::time::{Duration, Instant};

/// What one run of the load saw.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Latencies of the requests answered 200, sorted.
    pub latencies: Vec<Duration>,
    /// Requests that failed or were not answered 200.
    pub errors: usize,
    /// What went wrong with the first of them.
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn p(&self, percentile: f64) -> f64 {
        super::percentile_ms(&self.latencies, percentile)
    }

    /// Requests answered 200.
    pub fn served(&self) -> usize {
        self.latencies.len()
    }

    /// Requests answered 200 per second of the run.
    pub fn throughput(&self) -> f64 {
        self.served() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Counts one request's outcome (unsorted until the run ends).
    pub(crate) fn record(&mut self, outcome: Result<Duration, String>) {
        match outcome {
            Ok(latency) => self.latencies.push(latency),
            Err(why) => {
                self.errors += 1;
                self.first_error.get_or_insert(why);
            }
        }
    }

    /// Pools another run of the same load into this one: its samples, errors and time.
    pub fn merge(&mut self, other: LoadResult) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.elapsed += other.elapsed;
        self.latencies.sort();
    }
}

/// One kind of request the load repeats.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub body: Bytes,
    /// `Authorization: Bearer …`, for a server that wants one.
    pub bearer: Option<String>,
    /// Text a successful answer holds (the end of the expected answer, so a stream cut short or an
    /// error event sent with a 200 counts as an error).
    pub must_contain: Option<Bytes>,
}

impl Target {
    /// A chat request for `url`.
    pub fn new(url: String, body: &serde_json::Value) -> Target {
        Target {
            url,
            body: serde_json::to_vec(body).unwrap_or_default().into(),
            bearer: None,
            must_contain: None,
        }
    }

    pub fn with_bearer(mut self, token: Option<&str>) -> Target {
        self.bearer = token.map(str::to_string);
        self
    }

    pub fn must_contain(mut self, text: &str) -> Target {
        self.must_contain = Some(Bytes::copy_from_slice(text.as_bytes()));
        self
    }
}

/// Sends requests from `concurrency` workers, each starting a new one as soon as its last one is
/// answered, for `duration`; keeps their latencies.
pub async fn run(
    http: &reqwest::Client,
    target: &Target,
    concurrency: usize,
    duration: Duration,
) -> LoadResult {
    let started = Instant::now();
    let until = started + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, target) = (http.clone(), target.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = LoadResult::default();
            while Instant::now() < until {
                seen.record(one(&http, &target).await);
            }
            seen
        }));
    }
    let mut result = LoadResult::default();
    for worker in workers {
        if let Ok(seen) = worker.await {
            result.merge(seen);
        }
    }
    result.elapsed = started.elapsed();
    result
}

/// One request, read to the end of its answer (the whole stream for a streamed one): its latency,
/// or what went wrong.
pub async fn one(http: &reqwest::Client, target: &Target) -> Result<Duration, String> {
    let sent = Instant::now();
    let mut request = http
        .post(&target.url)
        .header("content-type", "application/json")
        .body(target.body.clone());
    if let Some(token) = &target.bearer {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("no answer: {}", with_causes(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{status}, body cut: {}", with_causes(&e)))?;
    if status != 200 {
        let start: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(format!("{status}: {start}"));
    }
    match &target.must_contain {
        Some(needle) if !contains(&body, needle) => {
            let end = String::from_utf8_lossy(&body[body.len().saturating_sub(200)..]).into_owned();
            Err(format!("200 without the end of the answer: …{end}"))
        }
        _ => Ok(sent.elapsed()),
    }
}

/// An error and its sources, `outer: inner: …` (reqwest's own text leaves out why a send failed).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_runs_keep_every_sample_in_order_and_add_their_time() {
        let ms = Duration::from_millis;
        let mut pooled = LoadResult {
            latencies: vec![ms(1), ms(5)],
            elapsed: ms(1_000),
            ..LoadResult::default()
        };
        let mut other = LoadResult {
            elapsed: ms(1_000),
            ..LoadResult::default()
        };
        other.record(Ok(ms(3)));
        other.record(Err("502 Bad Gateway".into()));
        other.record(Ok(ms(2)));
        other.record(Err("no answer".into()));
        pooled.merge(other);
        assert_eq!(pooled.latencies, vec![ms(1), ms(2), ms(3), ms(5)]);
        assert_eq!(pooled.errors, 2);
        assert_eq!(pooled.first_error.as_deref(), Some("502 Bad Gateway"));
        assert_eq!(pooled.throughput(), 2.0);
    }

    #[test]
    fn an_answer_is_complete_only_with_the_expected_text() {
        assert!(contains(br#"data: {"delta":{"content":" dog."}}"#, b"dog."));
        assert!(!contains(
            br#"data: {"delta":{"content":" lazy"}}"#,
            b"dog."
        ));
        assert!(!contains(b"do", b"dog."));
    }
}
