//! Rank order and 429 handling: the strongest route first, cooldowns from `Retry-After`.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::Value;

async fn three_ranked_routes() -> (
    Simulator,
    Simulator,
    Simulator,
    freerouter_tests::harness::TestGateway,
) {
    let (a, b, c) = (
        Simulator::start().await,
        Simulator::start().await,
        Simulator::start().await,
    );
    for (sim, model) in [(&a, "model-a"), (&b, "model-b"), (&c, "model-c")] {
        sim.model(model).answer(&format!("answer from {model}"));
    }
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .provider("pc", &c)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .route("pc", "model-c", 3)
        .start()
        .await;
    (a, b, c, gateway)
}

/// When rank 1's key may be used again, as the gateway's health board says.
fn rank_one_cooling_until(gateway: &TestGateway, now: i64) -> Option<i64> {
    let key_id = freerouter::config::Secret::new("sk-sim-pa-key").fingerprint();
    gateway
        .gateway
        .state
        .engine
        .health
        .key_cooling_until("pa", &key_id, "pa/model-a", now)
}

#[tokio::test]
async fn auto_is_served_by_rank_one() {
    let (a, b, c, gateway) = three_ranked_routes().await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    assert_eq!(header(&response, "x-gateway-provider"), "pa");
    assert_eq!(header(&response, "x-gateway-attempts"), "1");
    assert!(header(&response, "x-request-id").starts_with("req_"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "answer from model-a"
    );
    assert_eq!(
        (a.calls("model-a"), b.calls("model-b"), c.calls("model-c")),
        (1, 0, 0)
    );
    // The upstream's secret key went upstream, and nowhere else.
    let sent = &a.requests("model-a")[0];
    assert!(
        sent.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer sk-sim-pa-key")
    );
}

#[tokio::test]
async fn a_429_with_a_long_retry_after_is_served_by_rank_two_and_rank_one_rests() {
    let (a, b, _c, gateway) = three_ranked_routes().await;
    a.model("model-a").then(Behavior::rate_limited(Some("30")));
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    assert_eq!(header(&response, "x-gateway-attempts"), "2");
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pb/model-b:ok"
    );
    for _ in 0..5 {
        let response = gateway.chat(&ask("auto", "again")).await;
        assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
        assert_eq!(header(&response, "x-gateway-attempts"), "1");
    }
    assert_eq!(a.calls("model-a"), 1, "rank 1 is left alone while it cools");
    assert_eq!(b.calls("model-b"), 6);
}

#[tokio::test]
async fn a_429_with_retry_after_one_second_waits_and_is_served_by_rank_one() {
    let (a, b, _c, gateway) = three_ranked_routes().await;
    a.model("model-a").then(Behavior::rate_limited(Some("1")));
    let started = std::time::Instant::now();
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pa/model-a:ok"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "it waited for the reset"
    );
    assert_eq!((a.calls("model-a"), b.calls("model-b")), (2, 0));
}

#[tokio::test]
async fn the_cooldown_lasts_until_the_reset_the_provider_gave() {
    let (a, _b, _c, gateway) = three_ranked_routes().await;
    a.model("model-a").then(Behavior::rate_limited(Some("30")));
    let before = freerouter::time::now_ms();
    assert_eq!(gateway.chat(&ask("auto", "hello")).await.status(), 200);
    let cooldown = rank_one_cooling_until(&gateway, before).expect("rank 1's key is cooling");
    let seconds = (cooldown - before) as f64 / 1000.0;
    assert!((29.5..=31.0).contains(&seconds), "cooling for {seconds} s");
}

#[tokio::test]
async fn a_429_with_only_a_ratelimit_reset_header_cools_for_that_long() {
    let (a, b, _c, gateway) = three_ranked_routes().await;
    a.model("model-a").then(
        Behavior::rate_limited(None)
            .with_header("x-ratelimit-remaining-requests", "0")
            .with_header("x-ratelimit-reset-requests", "2m59.56s"),
    );
    let before = freerouter::time::now_ms();
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pb/model-b:ok"
    );
    let until = rank_one_cooling_until(&gateway, before).expect("cooling");
    assert!((179_000..=181_000).contains(&(until - before)));
    assert_eq!(b.calls("model-b"), 1);
}

#[tokio::test]
async fn hintless_429s_are_retried_with_backoff_then_the_next_route_serves() {
    let (a, b, _c, gateway) = three_ranked_routes().await;
    a.model("model-a").always(Behavior::rate_limited(None));
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pa/model-a:429,pa/model-a:429,pb/model-b:ok"
    );
    assert_eq!((a.calls("model-a"), b.calls("model-b")), (3, 1));
    // The escalated cooldown keeps rank 1 out of the next request.
    let response = gateway.chat(&ask("auto", "again")).await;
    assert_eq!(header(&response, "x-gateway-attempts"), "1");
    assert_eq!(a.calls("model-a"), 3);
}
