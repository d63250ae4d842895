//! The failure table of DESIGN.md §6: which upstream failures are retried on the same route, which
//! move on to the next route, and which reach the client unchanged.

use freerouter_tests::harness::{
    GatewayConfig, TestGateway, ask, ask_stream, closed_port_url, header, sse_data, streamed_text,
};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Three simulators, one model each (`model-a` … `model-c`, answering "answer from model-x"),
/// ranked 1 to 3 as `pa/model-a`, `pb/model-b`, `pc/model-c`.
struct Three {
    a: Simulator,
    b: Simulator,
    c: Simulator,
    gateway: TestGateway,
}

impl Three {
    /// Call counts of the three models, in rank order.
    fn calls(&self) -> (usize, usize, usize) {
        (
            self.a.calls("model-a"),
            self.b.calls("model-b"),
            self.c.calls("model-c"),
        )
    }

    fn total_calls(&self) -> usize {
        self.a.total_calls() + self.b.total_calls() + self.c.total_calls()
    }
}

/// The three ranked routes with a large window each.
async fn three_ranked(
    script: impl FnOnce(&Simulator, &Simulator, &Simulator),
    tweak: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> Three {
    three_ranked_with(["context_window = 100000"; 3], script, tweak).await
}

/// The three ranked routes, each with its own extra route TOML.
async fn three_ranked_with(
    extras: [&str; 3],
    script: impl FnOnce(&Simulator, &Simulator, &Simulator),
    tweak: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> Three {
    let (a, b, c) = (
        Simulator::start().await,
        Simulator::start().await,
        Simulator::start().await,
    );
    for (sim, model) in [(&a, "model-a"), (&b, "model-b"), (&c, "model-c")] {
        sim.model(model).answer(&answer_of(model));
    }
    script(&a, &b, &c);
    let config = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .provider("pc", &c)
        .route_with("pa", "model-a", 1, extras[0])
        .route_with("pb", "model-b", 2, extras[1])
        .route_with("pc", "model-c", 3, extras[2]);
    let gateway = tweak(config).start().await;
    Three { a, b, c, gateway }
}

fn answer_of(model: &str) -> String {
    format!("answer from {model}")
}

/// The answer text of a non-streaming 200.
async fn content(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("a JSON body");
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("an answer with text content: {body}"))
        .to_string()
}

/// Asserts a 200 served by `route` after exactly the attempts in `trail`, answering `text`.
async fn assert_served(response: reqwest::Response, route: &str, trail: &str, text: &str) {
    assert_eq!(
        response.status(),
        200,
        "served: {}",
        header(&response, "x-gateway-trail")
    );
    assert_eq!(header(&response, "x-gateway-route"), route);
    assert_eq!(header(&response, "x-gateway-trail"), trail);
    let attempts = trail.split(',').count().to_string();
    assert_eq!(header(&response, "x-gateway-attempts"), attempts);
    assert_eq!(content(response).await, text);
}

/// The script of one failing behaviour on rank 1 (`always`), the others answering normally.
fn rank_one_always(behavior: Behavior) -> impl FnOnce(&Simulator, &Simulator, &Simulator) {
    move |a, _, _| {
        a.model("model-a").always(behavior);
    }
}

/// The JSON body a `Behavior::Status` answers with.
fn status_body(behavior: &Behavior) -> Value {
    match behavior {
        Behavior::Status { body, .. } => body.clone(),
        other => panic!("not a status behaviour: {other:?}"),
    }
}

#[tokio::test]
async fn a_single_500_is_retried_once_on_the_same_route() {
    let three = three_ranked(
        |a, _, _| {
            a.model("model-a")
                .then(Behavior::error(500, "server_error", "boom"));
        },
        |c| c,
    )
    .await;
    let response = three.gateway.chat(&ask("auto", "hello")).await;
    assert_served(
        response,
        "pa/model-a",
        "pa/model-a:5xx,pa/model-a:ok",
        &answer_of("model-a"),
    )
    .await;
    assert_eq!(three.calls(), (2, 0, 0));
}

#[tokio::test]
async fn a_persistent_503_moves_on_within_a_bounded_number_of_attempts() {
    // Rank 1 down: one quick retry, then rank 2.
    let three = three_ranked(
        rank_one_always(Behavior::error(503, "overloaded", "busy")),
        |c| c,
    )
    .await;
    let response = three.gateway.chat(&ask("auto", "hello")).await;
    assert_served(
        response,
        "pb/model-b",
        "pa/model-a:5xx,pa/model-a:5xx,pb/model-b:ok",
        &answer_of("model-b"),
    )
    .await;
    assert_eq!(
        three.calls(),
        (2, 1, 0),
        "rank 1 gets exactly one quick retry"
    );

    // Everything down: 502 all_routes_failed, within the attempt budget.
    let down = Behavior::error(503, "overloaded", "busy");
    let three = three_ranked(
        |a, b, c| {
            a.model("model-a").always(down.clone());
            b.model("model-b").always(down.clone());
            c.model("model-c").always(down.clone());
        },
        |c| c.set("routing.attempt_budget", "4"),
    )
    .await;
    let started = Instant::now();
    let response = three.gateway.chat(&ask("auto", "hello")).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it gave up quickly"
    );
    assert_eq!(response.status(), 502);
    let trail = header(&response, "x-gateway-trail");
    let attempts_header = header(&response, "x-gateway-attempts");
    let body: Value = response.json().await.expect("a JSON error body");
    let error = &body["error"];
    assert_eq!(error["code"], "all_routes_failed", "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["type"].is_string(), "{body}");
    assert!(
        error.get("param").is_some(),
        "OpenAI shape has a param: {body}"
    );
    let attempts = error["attempts"].as_array().expect("an attempts array");
    let total = three.total_calls();
    assert!(
        total <= 4,
        "at most routing.attempt_budget upstream calls, got {total}"
    );
    assert_eq!(
        attempts.len(),
        total,
        "every upstream call is on the trail: {body}"
    );
    assert!(!attempts.is_empty());
    for attempt in attempts {
        assert_eq!(attempt["result"], "5xx", "{body}");
        assert!(attempt["route"].is_string(), "{body}");
    }
    assert_eq!(attempts_header, total.to_string());
    assert_eq!(trail.split(',').count(), total);
    assert!(
        trail.starts_with("pa/model-a:5xx"),
        "rank order is kept: {trail}"
    );
}

#[tokio::test]
async fn connection_refused_moves_on() {
    let (b, c) = (Simulator::start().await, Simulator::start().await);
    b.model("model-b").answer(&answer_of("model-b"));
    c.model("model-c").answer(&answer_of("model-c"));
    let gateway = GatewayConfig::new()
        .provider_at("dead", &closed_port_url(), "sk-x")
        .provider("pb", &b)
        .provider("pc", &c)
        .route("dead", "model-a", 1)
        .route("pb", "model-b", 2)
        .route("pc", "model-c", 3)
        .start()
        .await;
    let started = Instant::now();
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refusal is noticed at once"
    );
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    let trail = header(&response, "x-gateway-trail");
    let entries: Vec<&str> = trail.split(',').collect();
    let (served, failed) = entries.split_last().expect("a trail");
    assert_eq!(*served, "pb/model-b:ok", "{trail}");
    assert!(
        (1..=2).contains(&failed.len()) && failed.iter().all(|e| *e == "dead/model-a:connect"),
        "the dead route is left after at most one quick retry: {trail}"
    );
    assert_eq!(content(response).await, answer_of("model-b"));
    assert_eq!((b.calls("model-b"), c.calls("model-c")), (1, 0));
}

#[tokio::test]
async fn a_response_that_never_sends_headers_moves_on_and_is_not_retried() {
    let three = three_ranked(rank_one_always(Behavior::HangBeforeHeaders), |c| {
        c.set("routing.header_timeout_ms", "300")
    })
    .await;
    let started = Instant::now();
    let response = three.gateway.chat(&ask("auto", "hello")).await;
    let elapsed = started.elapsed();
    assert_served(
        response,
        "pb/model-b",
        "pa/model-a:header_timeout,pb/model-b:ok",
        &answer_of("model-b"),
    )
    .await;
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(
        three.calls(),
        (1, 1, 0),
        "the silent route is never called again"
    );
}

#[tokio::test]
async fn a_first_token_later_than_the_limit_moves_on() {
    let three = three_ranked(
        |a, _, _| {
            a.model("model-a").first_token_delay_ms(2000);
        },
        |c| c.set("routing.first_token_timeout_ms", "300"),
    )
    .await;
    let started = Instant::now();
    let response = three.gateway.chat(&ask_stream("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:first_token_timeout,pb/model-b:ok"
    );
    let events = sse_data(response).await;
    let elapsed = started.elapsed();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let text = streamed_text(&events);
    assert_eq!(
        text,
        answer_of("model-b"),
        "nothing of rank 1 reaches the client"
    );
    assert!(!text.contains("model-a"));
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(three.calls(), (1, 1, 0));
}

#[tokio::test]
async fn malformed_json_moves_on() {
    let three = three_ranked(rank_one_always(Behavior::MalformedJson), |c| c).await;
    let response = three.gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    let trail = header(&response, "x-gateway-trail");
    let entries: Vec<&str> = trail.split(',').collect();
    let (served, failed) = entries.split_last().expect("a trail");
    assert_eq!(*served, "pb/model-b:ok", "{trail}");
    assert!(
        (1..=2).contains(&failed.len()) && failed.iter().all(|e| *e == "pa/model-a:malformed"),
        "{trail}"
    );
    assert_eq!(content(response).await, answer_of("model-b"));
    assert_eq!(three.calls(), (failed.len(), 1, 0));
}

#[tokio::test]
async fn model_not_found_moves_on() {
    let three = three_ranked(
        rank_one_always(Behavior::error(
            404,
            "model_not_found",
            "The model `model-a` does not exist",
        )),
        |c| c,
    )
    .await;
    let response = three.gateway.chat(&ask("auto", "hello")).await;
    assert_served(
        response,
        "pb/model-b",
        "pa/model-a:not_found,pb/model-b:ok",
        &answer_of("model-b"),
    )
    .await;
    assert_eq!(three.calls(), (1, 1, 0));
}

/// Rank 1 refuses with `behavior`; the client gets exactly that refusal and nothing else is tried.
async fn assert_refusal_reaches_the_client(behavior: Behavior, label: &str) {
    let expected = status_body(&behavior);
    let three = three_ranked(rank_one_always(behavior), |c| c).await;
    let response = three.gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        format!("pa/model-a:{label}")
    );
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body, expected, "the upstream's own error body");
    assert_eq!(three.calls(), (1, 0, 0), "no retry, no other route");
}

#[tokio::test]
async fn a_content_policy_400_reaches_the_client_unchanged_with_no_other_route_tried() {
    assert_refusal_reaches_the_client(
        Behavior::error(
            400,
            "content_policy_violation",
            "Your request was rejected as a result of our safety system",
        ),
        "content_policy",
    )
    .await;
}

#[tokio::test]
async fn a_plain_400_reaches_the_client_unchanged() {
    assert_refusal_reaches_the_client(
        Behavior::error(400, "invalid_value", "temperature must be between 0 and 2"),
        "4xx",
    )
    .await;
}

#[tokio::test]
async fn context_length_exceeded_moves_only_to_a_larger_window() {
    let three = three_ranked_with(
        [
            "context_window = 100000",
            "context_window = 100000",
            "context_window = 200000",
        ],
        |a, _, _| {
            a.model("model-a").context_window(2000);
        },
        |c| c,
    )
    .await;
    // About 3000 tokens: more than rank 1 really takes, far less than any declared window.
    let prompt = "word ".repeat(2400);
    let response = three.gateway.chat(&ask("auto", &prompt)).await;
    assert_served(
        response,
        "pc/model-c",
        "pa/model-a:context_length,pc/model-c:ok",
        &answer_of("model-c"),
    )
    .await;
    assert_eq!(
        three.calls(),
        (1, 0, 1),
        "a window of the same size is not tried"
    );

    // Rank 1's real window is learned: the same prompt no longer goes there.
    let response = three.gateway.chat(&ask("auto", &prompt)).await;
    assert_served(
        response,
        "pb/model-b",
        "pb/model-b:ok",
        &answer_of("model-b"),
    )
    .await;
    assert_eq!(three.calls(), (1, 1, 1), "rank 1 is skipped without a call");
}

#[tokio::test]
async fn a_401_moves_on_to_the_next_route() {
    let three = three_ranked(
        rank_one_always(Behavior::error(401, "invalid_api_key", "bad key")),
        |c| c,
    )
    .await;
    let response = three.gateway.chat(&ask("auto", "hello")).await;
    assert_served(
        response,
        "pb/model-b",
        "pa/model-a:auth,pb/model-b:ok",
        &answer_of("model-b"),
    )
    .await;
    assert_eq!(three.calls(), (1, 1, 0));

    // The key is marked invalid: rank 1 is not called again.
    let response = three.gateway.chat(&ask("auto", "again")).await;
    assert_served(
        response,
        "pb/model-b",
        "pb/model-b:ok",
        &answer_of("model-b"),
    )
    .await;
    assert_eq!(three.calls(), (1, 2, 0));
}
