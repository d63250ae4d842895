//! Quota (DESIGN.md §6, quota paragraph; §7, "quota reservation spreads a burst"): every attempt
//! reserves against the key's limits before any upstream call, so a spent key is skipped without
//! a call, keys are spent by headroom, gateways sharing one database never overspend a key together,
//! and a spent key rests in the health board until the reset (the provider's, or the ledger's own).
//!
//! Minute windows: the simulator counts in fixed windows aligned to the clock minute, the gateway
//! in a sliding minute. Any fixed minute lies inside one sliding minute, so a gateway that keeps
//! its sliding limit can never be refused by the simulator, wherever the boundary falls: the
//! assertions below hold either way and need no waiting. Only the day windows are guarded (a test
//! run across UTC midnight would see the day turn between two requests).

use freerouter::config::Secret;
use freerouter::quota::{Grant, Scope};
use freerouter::time::{EpochMs, now_ms};
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::{Behavior, KeyLimits, Simulator};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const DAY_MS: EpochMs = 86_400_000;

fn rpm(n: u64) -> KeyLimits {
    KeyLimits {
        rpm: Some(n),
        ..KeyLimits::default()
    }
}

/// A provider of the user's own with its keys and extra TOML lines (`limits = …`, `day_reset = …`).
fn provider_toml(name: &str, sim: &Simulator, keys: &[&str], extra: &str) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        "[providers.{name}]\nbase_url = \"{}\"\napi_keys = [{}]\n{extra}",
        sim.base_url(),
        keys.join(", ")
    )
}

/// The id the gateway knows a key by.
fn key_id(key: &str) -> String {
    Secret::new(key).fingerprint()
}

/// When a key may be used again on a route, as the gateway's health board says (a cooldown of the
/// key across the provider counts too).
fn cooling_until(
    gateway: &TestGateway,
    provider: &str,
    key: &str,
    route_id: &str,
    now: EpochMs,
) -> Option<EpochMs> {
    gateway
        .gateway
        .state
        .engine
        .health
        .key_cooling_until(provider, &key_id(key), route_id, now)
}

/// The next UTC midnight after `now`.
fn next_utc_midnight(now: EpochMs) -> EpochMs {
    (now / DAY_MS + 1) * DAY_MS
}

/// Waits out the last seconds of a UTC day, so a test's requests share one day window.
async fn clear_of_utc_midnight() {
    let now = now_ms();
    let left = next_utc_midnight(now) - now;
    if left < 15_000 {
        tokio::time::sleep(Duration::from_millis(left as u64 + 100)).await;
    }
}

/// The `error.code` of a gateway error body.
async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("a JSON error body");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `Retry-After` as whole seconds.
fn retry_after(response: &reqwest::Response) -> i64 {
    header(response, "retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("a numeric Retry-After, got {:?}", response.headers()))
}

/// The key an upstream request was sent with (`Authorization: Bearer KEY`).
fn sent_key(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(name, _)| name == "authorization")
        .and_then(|(_, value)| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_key_with_no_quota_left_is_skipped_without_a_call() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").answer("answer from model-a");
    b.model("model-b").answer("answer from model-b");
    a.limit_key("sk-a", rpm(3));
    let gateway = GatewayConfig::new()
        .toml(&provider_toml("pa", &a, &["sk-a"], "limits = { rpm = 3 }"))
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .start()
        .await;
    for i in 0..3 {
        let response = gateway.chat(&ask("auto", "hello")).await;
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(header(&response, "x-gateway-route"), "pa/model-a", "{i}");
    }
    for i in 3..6 {
        let response = gateway.chat(&ask("auto", "hello")).await;
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(header(&response, "x-gateway-route"), "pb/model-b", "{i}");
        assert_eq!(
            header(&response, "x-gateway-attempts"),
            "1",
            "request {i}: the spent key cost no attempt (trail {})",
            header(&response, "x-gateway-trail")
        );
    }
    assert_eq!(a.calls("model-a"), 3, "no call beyond the key's rpm");
    assert_eq!(a.limit_refusals(), 0, "the provider never had to refuse");
    assert_eq!(b.calls("model-b"), 3);
}

#[tokio::test]
async fn when_every_key_is_spent_the_client_gets_quota_exhausted_with_the_soonest_reset() {
    // A per-minute limit: the third request waits for the sliding minute, at most 60 s.
    let sim = Simulator::start().await;
    sim.model("model-a");
    let gateway = GatewayConfig::new()
        .toml(&provider_toml("pa", &sim, &["sk-a"], ""))
        .route_with(
            "pa",
            "model-a",
            1,
            "context_window = 100000\nlimits = { rpm = 2 }",
        )
        .start()
        .await;
    for i in 0..2 {
        let response = gateway.chat(&ask("auto", "hello")).await;
        assert_eq!(response.status(), 200, "request {i}");
    }
    let refused = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(error_code(refused).await, "quota_exhausted");
    assert_eq!(sim.calls("model-a"), 2, "no third upstream call");

    // A daily limit: the client is told to come back at the provider's day reset.
    clear_of_utc_midnight().await;
    let daily = Simulator::start().await;
    daily.model("model-d");
    let gateway = GatewayConfig::new()
        .toml(&provider_toml(
            "pd",
            &daily,
            &["sk-d"],
            "limits = { rpd = 1 }\nday_reset = \"00:00 UTC\"",
        ))
        .route("pd", "model-d", 1)
        .start()
        .await;
    assert_eq!(gateway.chat(&ask("auto", "hello")).await.status(), 200);
    let refused = gateway.chat(&ask("auto", "hello")).await;
    let now = now_ms();
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    let to_midnight = (next_utc_midnight(now) - now) / 1000;
    assert!(
        (wait - to_midnight).abs() <= 2,
        "Retry-After {wait} s, the next UTC midnight is {to_midnight} s away"
    );
    assert_eq!(error_code(refused).await, "quota_exhausted");
    assert_eq!(daily.calls("model-d"), 1);
}

#[tokio::test]
async fn keys_of_one_provider_are_spent_by_headroom() {
    let sim = Simulator::start().await;
    sim.model("model-a");
    sim.limit_key("k1", rpm(5));
    sim.limit_key("k2", rpm(5));
    let gateway = GatewayConfig::new()
        .toml(&provider_toml(
            "pa",
            &sim,
            &["k1", "k2"],
            "limits = { rpm = 5 }",
        ))
        .route("pa", "model-a", 1)
        .start()
        .await;
    for i in 0..10 {
        let response = gateway.chat(&ask("auto", "hello")).await;
        assert_eq!(
            response.status(),
            200,
            "request {i}: {}",
            header(&response, "x-gateway-trail")
        );
        assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    }
    let keys: Vec<String> = sim
        .requests("model-a")
        .iter()
        .map(|r| sent_key(&r.headers))
        .collect();
    assert_eq!(keys.len(), 10, "one upstream call per request");
    let count = |key: &str| keys.iter().filter(|k| *k == key).count();
    assert_eq!((count("k1"), count("k2")), (5, 5), "keys used: {keys:?}");
    let refused = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(error_code(refused).await, "quota_exhausted");
    assert_eq!(sim.calls("model-a"), 10, "no eleventh upstream call");
    assert_eq!(sim.limit_refusals(), 0);
}

#[tokio::test]
async fn a_success_with_no_tokens_left_cools_the_key_until_the_token_reset() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    b.model("model-b");
    // A complete answer whose headers say the key's tokens are spent for 7.66 s.
    let answer = json!({
        "id": "chatcmpl-spent",
        "object": "chat.completion",
        "created": 1,
        "model": "model-a",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "last one"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    });
    a.model("model-a").then(
        Behavior::Status {
            status: 200,
            body: answer,
            headers: Vec::new(),
        }
        .with_header("x-ratelimit-limit-tokens", "6000")
        .with_header("x-ratelimit-remaining-tokens", "0")
        .with_header("x-ratelimit-reset-tokens", "7.66s"),
    );
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .start()
        .await;
    let before = now_ms();
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let until = cooling_until(&gateway, "pa", "sk-sim-pa-key", "pa/model-a", before)
        .expect("the spent key is cooling");
    let seconds = (until - before) as f64 / 1000.0;
    assert!(
        (6.66..=8.66).contains(&seconds),
        "cooling for {seconds} s, expected 7.66 s"
    );
    let started = Instant::now();
    let response = gateway.chat(&ask("auto", "again")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    assert_eq!(header(&response, "x-gateway-attempts"), "1");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served at once, not after the reset: {:?}",
        started.elapsed()
    );
    assert_eq!((a.calls("model-a"), b.calls("model-b")), (1, 1));
}

#[tokio::test]
async fn a_429_with_no_tokens_left_moves_on_at_once_and_cools_until_the_token_reset() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    b.model("model-b");
    a.model("model-a").then(
        Behavior::rate_limited(None)
            .with_header("x-ratelimit-remaining-tokens", "0")
            .with_header("x-ratelimit-reset-tokens", "7.66s"),
    );
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .start()
        .await;
    let before = now_ms();
    let started = Instant::now();
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pb/model-b:ok"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a reset 7.66 s away is not waited for: {:?}",
        started.elapsed()
    );
    let until = cooling_until(&gateway, "pa", "sk-sim-pa-key", "pa/model-a", before)
        .expect("the spent key is cooling");
    let seconds = (until - before) as f64 / 1000.0;
    assert!(
        (6.66..=8.66).contains(&seconds),
        "cooling for {seconds} s, expected 7.66 s"
    );
    assert_eq!((a.calls("model-a"), b.calls("model-b")), (1, 1));
}

#[tokio::test]
async fn a_daily_quota_refusal_cools_until_the_daily_reset_and_a_minute_one_does_not() {
    clear_of_utc_midnight().await;
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    b.model("model-b");
    a.model("model-a").then(Behavior::error(
        429,
        "rate_limit_exceeded",
        "Rate limit reached for requests per day (RPD): Limit 1000, Used 1000",
    ));
    let daily_config = GatewayConfig::new()
        .toml(&provider_toml(
            "pa",
            &a,
            &["sk-sim-pa-key"],
            "day_reset = \"00:00 UTC\"",
        ))
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2);
    let gateway = daily_config.start().await;
    let before = now_ms();
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    assert_eq!(a.calls("model-a"), 1, "a spent day is not retried");
    let until = cooling_until(&gateway, "pa", "sk-sim-pa-key", "pa/model-a", before)
        .expect("the key is cooling");
    let midnight = next_utc_midnight(before);
    assert!(
        (until - midnight).abs() <= 2_000,
        "cooling until {until}, the next UTC midnight is {midnight} ({} s apart)",
        (until - midnight) / 1000
    );

    // A per-minute refusal without a hint: backoff, then a short escalating cooldown.
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    b.model("model-b");
    a.model("model-a").always(Behavior::error(
        429,
        "rate_limit_exceeded",
        "Rate limit reached for requests per minute (RPM): Limit 30, Used 30, Requested 1.",
    ));
    let gateway = GatewayConfig::new()
        .toml(&provider_toml(
            "pa",
            &a,
            &["sk-sim-pa-key"],
            "day_reset = \"00:00 UTC\"",
        ))
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .start()
        .await;
    let before = now_ms();
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    let until = cooling_until(&gateway, "pa", "sk-sim-pa-key", "pa/model-a", before)
        .expect("the key is cooling");
    let seconds = (until - before) / 1000;
    assert!(
        until - before <= 5 * 60_000,
        "a per-minute limit cools for a few minutes at most, not {seconds} s (midnight is {} s away)",
        (next_utc_midnight(before) - before) / 1000
    );
    assert!(a.calls("model-a") <= 3, "at most 3 tries on the route");
}

#[tokio::test]
async fn two_gateways_on_one_database_never_exceed_a_keys_rpm_together() {
    let sim = Simulator::start().await;
    sim.model("model-a");
    sim.limit_key("sk-shared", rpm(10));
    let config = GatewayConfig::new()
        .toml(&provider_toml(
            "pa",
            &sim,
            &["sk-shared"],
            "limits = { rpm = 10 }",
        ))
        .route("pa", "model-a", 1);
    let first = config.clone().start().await;
    let second = config.in_dir(first.dir.clone()).start().await;
    assert_eq!(first.db_path, second.db_path, "one database file");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let gateway = if i % 2 == 0 { &first } else { &second };
        let (http, url) = (gateway.http.clone(), gateway.url("/v1/chat/completions"));
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&ask("auto", &format!("burst {i}")))
                .send()
                .await
                .expect("the gateway answers");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            (status, body["error"]["code"].as_str().map(str::to_string))
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the request task"));
    }
    let served = outcomes.iter().filter(|(status, _)| *status == 200).count();
    let exhausted = outcomes
        .iter()
        .filter(|(status, code)| *status == 429 && code.as_deref() == Some("quota_exhausted"))
        .count();
    assert_eq!(served, 10, "outcomes: {outcomes:?}");
    assert_eq!(exhausted, 30, "outcomes: {outcomes:?}");
    assert_eq!(sim.limit_refusals(), 0, "the provider never had to refuse");
    assert_eq!(sim.calls("model-a"), 10);
}

/// The client's `Retry-After` and the health board agree on when the key is back, and the ledger
/// grants it again at exactly that moment. That a cooldown simply ends with time (no maintainer
/// action) is unit-tested in `shared/src/quota` (`reservations_stop_at_the_rpm_and_resume_as_the_
/// minute_slides`) and by the board's `key_cooling_until`; here the gateway's own ledger is asked
/// about that future moment instead of waiting up to a minute for it.
#[tokio::test]
async fn a_key_comes_back_by_itself_after_its_reset() {
    let sim = Simulator::start().await;
    sim.model("model-a");
    let gateway = GatewayConfig::new()
        .toml(&provider_toml(
            "pa",
            &sim,
            &["sk-one"],
            "limits = { rpm = 1 }",
        ))
        .route("pa", "model-a", 1)
        .start()
        .await;
    assert_eq!(gateway.chat(&ask("auto", "hello")).await.status(), 200);
    let refused = gateway.chat(&ask("auto", "again")).await;
    let answered = now_ms();
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    assert_eq!(error_code(refused).await, "quota_exhausted");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(sim.calls("model-a"), 1);

    let until = cooling_until(&gateway, "pa", "sk-one", "pa/model-a", answered)
        .expect("the spent key rests in the health board");
    let board_wait = (until - answered) as f64 / 1000.0;
    assert!(
        (board_wait - wait as f64).abs() <= 1.0,
        "the board says {board_wait} s, Retry-After said {wait} s"
    );
    assert_eq!(
        cooling_until(&gateway, "pa", "sk-one", "pa/model-a", until),
        None,
        "the cooldown ends by itself at its reset"
    );

    let engine = &gateway.gateway.state.engine;
    let snapshot = engine.catalog.snapshot();
    let provider = snapshot.provider("pa").expect("provider pa");
    let route = snapshot
        .routes
        .iter()
        .find(|r| r.route_id == "pa/model-a")
        .expect("route pa/model-a");
    let id = key_id("sk-one");
    let just_before = engine
        .ledger
        .reserve(provider, route, &id, 10, until - 1)
        .await
        .expect("the ledger answers");
    assert_eq!(
        just_before,
        Grant::Refused {
            until_ms: until,
            scope: Scope::Key
        },
        "still spent a moment before the reset"
    );
    let at_reset = engine
        .ledger
        .reserve(provider, route, &id, 10, until)
        .await
        .expect("the ledger answers");
    assert!(
        matches!(at_reset, Grant::Granted(_)),
        "room again at the reset: {at_reset:?}"
    );
}

#[tokio::test]
async fn a_monthly_limit_is_never_passed_and_the_client_is_told_to_come_back_on_the_first_of_next_month()
 {
    clear_of_utc_midnight().await;
    let monthly = Simulator::start().await;
    monthly.model("model-m");
    let gateway = GatewayConfig::new()
        .toml(&provider_toml(
            "pm",
            &monthly,
            &["sk-m"],
            "limits = { rpm = 100, rpmonth = 4 }",
        ))
        .route("pm", "model-m", 1)
        .start()
        .await;
    for _ in 0..4 {
        assert_eq!(gateway.chat(&ask("auto", "hello")).await.status(), 200);
    }
    let refused = gateway.chat(&ask("auto", "hello")).await;
    let now = now_ms();
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    let to_next_month = (freerouter::quota::window::next_month_start(now) - now) / 1000;
    assert!(
        (wait - to_next_month).abs() <= 2,
        "Retry-After {wait} s, the next month starts in {to_next_month} s"
    );
    assert_eq!(error_code(refused).await, "quota_exhausted");
    assert_eq!(
        monthly.calls("model-m"),
        4,
        "the fifth request was never sent"
    );
}
