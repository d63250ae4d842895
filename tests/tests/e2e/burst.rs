//! Burst control (DESIGN.md §7): a concurrency limit with a bounded, timed wait queue. The excess of a
//! burst gets 429 `request_queue_timeout` with `Retry-After`; nothing hangs; nothing is a 5xx.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask};
use freerouter_tests::simulator::Simulator;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODEL: &str = "sim-slow";
const LIMIT: usize = 20;
const BURST: usize = 200;
/// Long enough that a burst arriving over a slow second still meets a full house.
const LATENCY_MS: u64 = 1000;

/// One request's outcome as the client saw it.
struct Outcome {
    status: u16,
    code: Option<String>,
    retry_after: Option<String>,
    elapsed: Duration,
}

async fn slow_route(queue_timeout_s: &str, max_queue: &str) -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model(MODEL).latency_ms(LATENCY_MS);
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route("pa", MODEL, 1)
        .set("limits.max_concurrent_requests", &LIMIT.to_string())
        .set("limits.queue_timeout_s", queue_timeout_s)
        .set("limits.max_queue", max_queue)
        // The upstream takes a second; a loaded machine must not turn that into a header timeout.
        .set("routing.header_timeout_ms", "10000")
        .start()
        .await;
    (sim, gateway)
}

/// Fires `BURST` requests at once; every one must be answered within 15 s in all.
async fn fire(gateway: &TestGateway) -> (Vec<Outcome>, Duration) {
    let url = Arc::new(gateway.url("/v1/chat/completions"));
    let started = Instant::now();
    let tasks: Vec<_> = (0..BURST)
        .map(|i| {
            let http = gateway.http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let sent = Instant::now();
                let response = http
                    .post(url.as_str())
                    .json(&ask("auto", &format!("burst {i}")))
                    .send()
                    .await
                    .expect("the gateway answers");
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body: Value = response.json().await.unwrap_or(Value::Null);
                Outcome {
                    status,
                    code: body["error"]["code"].as_str().map(str::to_string),
                    retry_after,
                    elapsed: sent.elapsed(),
                }
            })
        })
        .collect();
    let joined = tokio::time::timeout(Duration::from_secs(15), futures::future::join_all(tasks))
        .await
        .expect("every request of the burst is answered within 15 s: none hangs");
    let outcomes = joined
        .into_iter()
        .map(|r| r.expect("the request task does not panic"))
        .collect();
    (outcomes, started.elapsed())
}

/// No 5xx; every refusal is 429 `request_queue_timeout` with a whole-second `Retry-After` ≥ 1.
fn assert_only_served_or_queue_refused(outcomes: &[Outcome]) {
    for outcome in outcomes {
        assert!(
            outcome.status < 500,
            "no 5xx in a burst, got {}",
            outcome.status
        );
        if outcome.status == 200 {
            continue;
        }
        assert_eq!(
            outcome.status, 429,
            "the excess of a burst is refused with 429"
        );
        assert_eq!(
            outcome.code.as_deref(),
            Some("request_queue_timeout"),
            "a refused request's code"
        );
        let retry_after = outcome
            .retry_after
            .as_deref()
            .unwrap_or_else(|| panic!("a refused request carries Retry-After"));
        let secs: u64 = retry_after
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After is whole seconds, got {retry_after:?}"));
        assert!(secs >= 1, "Retry-After is at least a second");
    }
}

/// The most upstream calls that started within any `window` (a call holds its slot `LATENCY_MS`, so
/// in a window shorter than that each slot starts at most one call).
fn most_starts_within(sim: &Simulator, window: Duration) -> usize {
    let mut at: Vec<Instant> = sim.requests(MODEL).iter().map(|r| r.at).collect();
    at.sort();
    (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| t.duration_since(at[i]) < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_burst_of_200_against_a_limit_of_20_refuses_the_excess_with_queue_timeout() {
    let (sim, gateway) = slow_route("0.2", "200").await;
    let (outcomes, total) = fire(&gateway).await;

    assert_only_served_or_queue_refused(&outcomes);
    let served = outcomes.iter().filter(|o| o.status == 200).count();
    let refused = outcomes.len() - served;
    assert!(
        served >= LIMIT,
        "at least the limit is served, got {served} in {total:?}"
    );
    assert!(
        refused >= 100,
        "most of the burst is refused, got {refused} ({served} served) in {total:?}"
    );
    assert_eq!(
        sim.calls(MODEL),
        served,
        "only served requests reached the upstream"
    );
    let most = most_starts_within(&sim, Duration::from_millis(250));
    assert!(
        most <= LIMIT,
        "the upstream never saw more than {LIMIT} calls at once, got {most} starting within 250 ms"
    );
}

#[tokio::test]
async fn with_a_queue_of_5_the_excess_beyond_limit_and_queue_is_refused_at_once() {
    // A long queue wait: whoever is refused quickly was refused for a full queue, not a timeout.
    let (sim, gateway) = slow_route("5", "5").await;
    let (outcomes, total) = fire(&gateway).await;

    assert_only_served_or_queue_refused(&outcomes);
    let served = outcomes.iter().filter(|o| o.status == 200).count();
    let refused: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != 200).collect();
    assert!(
        served >= LIMIT + 5,
        "the limit and the queue are served, got {served} in {total:?}"
    );
    assert!(
        refused.len() >= 100,
        "most of the burst is refused, got {} ({served} served) in {total:?}",
        refused.len()
    );
    let slowest_refusal = refused.iter().map(|o| o.elapsed).max().unwrap_or_default();
    assert!(
        slowest_refusal < Duration::from_secs(2),
        "a full queue refuses at once, without waiting the 5 s allowance; slowest refusal {slowest_refusal:?}"
    );
    let serial = Duration::from_millis(LATENCY_MS * BURST as u64);
    assert!(
        total < Duration::from_secs(8),
        "the whole burst finishes in well under the serial {serial:?}, took {total:?}"
    );
    assert_eq!(
        sim.calls(MODEL),
        served,
        "only served requests reached the upstream"
    );
    let most = most_starts_within(&sim, Duration::from_millis(250));
    assert!(
        most <= LIMIT,
        "the upstream never saw more than {LIMIT} calls at once, got {most} starting within 250 ms"
    );
}

/// The provider issue's burst scenario at test scale (the benchmark runs it at 1,000 × 100):
/// six providers with free-tier limits, zero upstream 429s, served == capacity, correct Retry-After.
#[tokio::test]
async fn a_burst_against_six_limited_providers_spends_exactly_their_capacity_without_a_429() {
    let report = freerouter_tests::bench::burst::run(freerouter_tests::bench::burst::BurstConfig {
        requests: 300,
        clients: 50,
        upstream_latency_ms: 20,
    })
    .await;
    assert!(report.holds(), "{}\n{report:?}", report.table());
}
