//! Choosing among routes: explicit models and aliases, `auto-fast`, `auto-balanced`, sticky sessions.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::json;

/// Three providers: rank 1 `pa/solo`, then `pb/llama` and `pc/llama` sharing the alias `llama-3.3-70b`.
async fn aliased() -> (Simulator, Simulator, Simulator, TestGateway) {
    let (a, b, c) = (
        Simulator::start().await,
        Simulator::start().await,
        Simulator::start().await,
    );
    a.model("solo");
    b.model("llama");
    c.model("llama");
    let alias = "context_window = 100000\naliases = [\"llama-3.3-70b\"]";
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .provider("pc", &c)
        .route("pa", "solo", 1)
        .route_with("pb", "llama", 2, alias)
        .route_with("pc", "llama", 3, alias)
        .start()
        .await;
    (a, b, c, gateway)
}

#[tokio::test]
async fn an_alias_served_by_several_providers_is_tried_on_each_before_the_ranked_order() {
    let (a, b, c, gateway) = aliased().await;
    let response = gateway.chat(&ask("llama-3.3-70b", "hi")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pb/llama");
    b.model("llama").then(Behavior::rate_limited(Some("60")));
    let response = gateway.chat(&ask("llama-3.3-70b", "hi")).await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "pc/llama",
        "the alias's other provider comes next"
    );
    c.model("llama").then(Behavior::rate_limited(Some("60")));
    let response = gateway.chat(&ask("llama-3.3-70b", "hi")).await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "pa/solo",
        "then the ranked order"
    );
    assert_eq!(a.calls("solo"), 1);
}

#[tokio::test]
async fn a_strict_request_never_leaves_the_named_model() {
    let (a, b, c, gateway) = aliased().await;
    b.model("llama")
        .always(Behavior::error(503, "overloaded", "busy"));
    c.model("llama")
        .always(Behavior::error(503, "overloaded", "busy"));
    let response = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("x-freerouter-strict", "true")
        .json(&ask("llama-3.3-70b", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(a.calls("solo"), 0);
    assert!(b.calls("llama") > 0 && c.calls("llama") > 0);
}

#[tokio::test]
async fn an_explicit_route_id_or_display_name_is_tried_first() {
    let (_a, _b, c, gateway) = aliased().await;
    assert_eq!(
        header(
            &gateway.chat(&ask("pc/llama", "hi")).await,
            "x-gateway-route"
        ),
        "pc/llama"
    );
    c.model("llama").then(Behavior::rate_limited(Some("60")));
    let response = gateway.chat(&ask("pc/llama", "hi")).await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "pa/solo",
        "then rank order"
    );
}

#[tokio::test]
async fn auto_fast_learns_which_route_is_fastest() {
    let (slow, fast) = (Simulator::start().await, Simulator::start().await);
    slow.model("slow").latency_ms(300);
    fast.model("fast");
    let gateway = GatewayConfig::new()
        .provider("ps", &slow)
        .provider("pf", &fast)
        .route("ps", "slow", 1)
        .route("pf", "fast", 2)
        .start()
        .await;
    for _ in 0..2 {
        assert_eq!(
            gateway.chat(&ask("auto-fast", "measure")).await.status(),
            200
        );
    }
    for _ in 0..5 {
        assert_eq!(
            header(
                &gateway.chat(&ask("auto-fast", "go")).await,
                "x-gateway-route"
            ),
            "pf/fast"
        );
    }
    assert_eq!(
        header(&gateway.chat(&ask("auto", "go")).await, "x-gateway-route"),
        "ps/slow",
        "auto keeps rank"
    );
}

#[tokio::test]
async fn auto_balanced_spreads_load_towards_fast_reliable_routes() {
    let sims = [
        Simulator::start().await,
        Simulator::start().await,
        Simulator::start().await,
    ];
    sims[0].model("m").latency_ms(250);
    sims[1].model("m");
    sims[2].model("m");
    let gateway = GatewayConfig::new()
        .provider("p0", &sims[0])
        .provider("p1", &sims[1])
        .provider("p2", &sims[2])
        .route("p0", "m", 1)
        .route("p1", "m", 2)
        .route("p2", "m", 3)
        .start()
        .await;
    for _ in 0..40 {
        assert_eq!(
            gateway.chat(&ask("auto-balanced", "spread")).await.status(),
            200
        );
    }
    let served: Vec<usize> = sims.iter().map(|s| s.calls("m")).collect();
    assert_eq!(served.iter().sum::<usize>(), 40);
    assert!(
        served.iter().filter(|n| **n > 0).count() >= 2,
        "load is spread: {served:?}"
    );
    assert!(
        served[0] < 20,
        "the slow rank-1 route does not take most: {served:?}"
    );
}

#[tokio::test]
async fn a_conversation_keeps_the_route_that_served_it_and_single_turns_are_never_pinned() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("m1");
    b.model("m2");
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "m1", 1)
        .route("pb", "m2", 2)
        .start()
        .await;
    // Turn 2 of a conversation: rank 1 fails (a 500 and its retry), rank 2 serves and is pinned.
    a.model("m1")
        .then(Behavior::error(500, "server_error", "boom"))
        .then(Behavior::error(500, "server_error", "boom"));
    let mut conversation = vec![
        json!({"role": "user", "content": "plan a trip"}),
        json!({"role": "assistant", "content": "where to?"}),
        json!({"role": "user", "content": "Lisbon"}),
    ];
    let turn = |messages: &Vec<serde_json::Value>| json!({"model": "auto", "messages": messages});
    assert_eq!(
        header(&gateway.chat(&turn(&conversation)).await, "x-gateway-route"),
        "pb/m2"
    );
    conversation.push(json!({"role": "assistant", "content": "when?"}));
    conversation.push(json!({"role": "user", "content": "May"}));
    assert_eq!(
        header(&gateway.chat(&turn(&conversation)).await, "x-gateway-route"),
        "pb/m2",
        "the conversation stays on its route though rank 1 is healthy again"
    );
    assert_eq!(
        header(
            &gateway.chat(&ask("auto", "single turn")).await,
            "x-gateway-route"
        ),
        "pa/m1"
    );
    // An explicit session id pins from the first turn.
    let pinned = |text: &str| {
        gateway
            .http
            .post(gateway.url("/v1/chat/completions"))
            .header("x-session-id", "agent-7")
            .json(&ask("auto", text))
            .send()
    };
    a.model("m1")
        .then(Behavior::rate_limited(Some("1")).with_header("x-ratelimit-remaining-requests", "5"));
    let first = pinned("one").await.unwrap();
    assert_eq!(header(&first, "x-gateway-route"), "pa/m1");
    assert_eq!(
        header(&pinned("two").await.unwrap(), "x-gateway-route"),
        "pa/m1"
    );
}
