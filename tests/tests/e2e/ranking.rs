//! Rank order and 429 handling: the strongest route first, cooldowns from `Retry-After`.

use freerouter_tests::harness::{GatewayConfig, ask, header};
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
