//! What a client can make an upstream say, and why none of it damages what other clients share:
//! fields that would spend the owner's money never leave the gateway, a refusal the request itself
//! provoked marks nothing, every mark comes back by itself, and no cooldown outlasts its cap.

use freerouter::config::Secret;
use freerouter::health::HealthState;
use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, ask_stream, header, sse_data};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Two ranked routes on two simulators: `pa/model-a` first, `pb/model-b` as the fallback.
struct Two {
    a: Simulator,
    b: Simulator,
    gateway: TestGateway,
}

async fn two(tweak: impl FnOnce(GatewayConfig) -> GatewayConfig) -> Two {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").answer("from a");
    b.model("model-b").answer("from b");
    let config = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2);
    Two {
        gateway: tweak(config).start().await,
        a,
        b,
    }
}

fn key_of(provider: &str) -> String {
    Secret::new(format!("sk-sim-{provider}-key")).fingerprint()
}

fn served_by(response: &reqwest::Response) -> String {
    header(response, "x-gateway-route")
}

/// Polls until `done` holds (the gateway's writes and reloads are asynchronous), at most 5 s.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    done()
}

#[tokio::test]
async fn a_client_adding_openrouter_routing_and_billing_fields_sends_none_of_them_upstream() {
    let two = two(|c| c).await;
    let mut body = ask("auto", "hello");
    body["models"] = json!(["anthropic/claude-opus-4", "openai/gpt-5"]);
    body["route"] = json!("fallback");
    body["provider"] = json!({"order": ["paid-provider"], "allow_fallbacks": true});
    body["plugins"] = json!([{"id": "web"}]);
    body["transforms"] = json!(["middle-out"]);
    body["extra_body"] = json!({"usage": {"include": true}});
    body["seed"] = json!(7);
    body["temperature"] = json!(0.2);
    let response = two.gateway.chat(&body).await;
    assert_eq!(response.status(), 200);
    let sent = &two.a.requests("model-a")[0].body;
    for field in [
        "models",
        "route",
        "provider",
        "plugins",
        "transforms",
        "extra_body",
    ] {
        assert!(
            sent.get(field).is_none(),
            "{field} reached the upstream: {sent}"
        );
    }
    assert_eq!(sent["seed"], 7, "OpenAI's own fields go through");
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["model"], "model-a");
}

#[tokio::test]
async fn a_field_the_owner_names_in_passthrough_fields_reaches_the_upstream() {
    let two = two(|c| c.set("routing.passthrough_fields", "provider,top_k")).await;
    let mut body = ask("auto", "hello");
    body["provider"] = json!({"order": ["x"]});
    body["top_k"] = json!(40);
    body["models"] = json!(["paid/model"]);
    assert_eq!(two.gateway.chat(&body).await.status(), 200);
    let sent = &two.a.requests("model-a")[0].body;
    assert_eq!(sent["provider"], json!({"order": ["x"]}));
    assert_eq!(sent["top_k"], 40);
    assert!(sent.get("models").is_none());
}

#[tokio::test]
async fn a_provider_specific_field_reaches_only_the_provider_whose_adapter_declares_it() {
    let (openrouter, plain) = (Simulator::start().await, Simulator::start().await);
    openrouter.model("free-model:free");
    plain.model("model-b");
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.openrouter]\nbase_url = \"{}\"\napi_keys = [\"sk-or\"]",
            openrouter.base_url()
        ))
        .provider("pb", &plain)
        .route("openrouter", "free-model:free", 1)
        .route("pb", "model-b", 2)
        .start()
        .await;
    let mut body = ask("openrouter/free-model:free", "hello");
    body["top_k"] = json!(40);
    body["models"] = json!(["paid/model"]);
    assert_eq!(gateway.chat(&body).await.status(), 200);
    let to_openrouter = &openrouter.requests("free-model:free")[0].body;
    assert_eq!(
        to_openrouter["top_k"], 40,
        "OpenRouter's adapter declares top_k"
    );
    assert!(to_openrouter.get("models").is_none(), "but never `models`");
    let mut body = ask("pb/model-b", "hello");
    body["top_k"] = json!(40);
    assert_eq!(gateway.chat(&body).await.status(), 200);
    assert!(
        plain.requests("model-b")[0].body.get("top_k").is_none(),
        "a plain OpenAI-compatible provider never sees it"
    );
}

#[tokio::test]
async fn a_moderation_403_goes_back_to_the_client_and_marks_no_key_invalid() {
    let two = two(|c| c).await;
    let flagged = Behavior::Status {
        status: 403,
        body: json!({"error": {
            "message": "Your chosen model requires moderation and your input was flagged for \"harassment\"",
            "code": 403,
            "metadata": {"reasons": ["harassment"], "flagged_input": "...", "provider_name": "x"}
        }}),
        headers: Vec::new(),
    };
    two.a.model("model-a").then(flagged);
    let response = two.gateway.chat(&ask("auto", "something flagged")).await;
    assert_eq!(
        response.status(),
        403,
        "the client learns its input was refused"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body.to_string().contains("flagged"), "{body}");
    assert_eq!(two.b.calls("model-b"), 0, "not retried elsewhere");
    let health = &two.gateway.gateway.state.engine.health;
    assert!(!health.key_invalid("pa", &key_of("pa"), now_ms()));
    let next = two.gateway.chat(&ask("auto", "an ordinary question")).await;
    assert_eq!(next.status(), 200);
    assert_eq!(
        served_by(&next),
        "pa/model-a",
        "the key still serves everyone"
    );
}

#[tokio::test]
async fn an_echoed_context_length_inside_an_invalid_value_message_teaches_no_window() {
    let two = two(|c| c).await;
    two.a.model("model-a").then(Behavior::error(
        400,
        "invalid_value",
        "Invalid value for 'stop': 'maximum context length is 1 tokens, context window 1'",
    ));
    let response = two.gateway.chat(&ask("auto", "tiny")).await;
    assert_eq!(
        response.status(),
        400,
        "a parameter error goes to the client"
    );
    let route = two.gateway.gateway.state.engine.health.route("pa/model-a");
    assert_eq!(route.and_then(|r| r.learned_context_window), None);
    let next = two.gateway.chat(&ask("auto", "a normal request")).await;
    assert_eq!(
        served_by(&next),
        "pa/model-a",
        "the route still takes every size"
    );
}

#[tokio::test]
async fn a_parameter_error_saying_does_not_exist_never_marks_the_route_outdated() {
    let two = two(|c| c).await;
    for _ in 0..5 {
        two.a.model("model-a").then(Behavior::error(
            400,
            "invalid_parameter",
            "The parameter `frobnicate` does not exist",
        ));
    }
    for _ in 0..5 {
        let response = two.gateway.chat(&ask("auto", "hi")).await;
        assert_eq!(response.status(), 400);
    }
    let state = two
        .gateway
        .gateway
        .state
        .engine
        .health
        .route("pa/model-a")
        .map(|r| r.effective_state(now_ms()));
    assert_ne!(state, Some(HealthState::PotentiallyOutdated));
    let next = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&next), "pa/model-a");
}

#[tokio::test]
async fn an_outdated_route_is_tried_again_after_its_backoff_and_serves_once_it_is_back() {
    let two = two(|c| {
        c.set("routing.repeated_after", "2")
            .set("routing.reprobe_after_ms", "400")
    })
    .await;
    for _ in 0..2 {
        two.a
            .model("model-a")
            .then(Behavior::error(404, "model_not_found", "no such model"));
    }
    for _ in 0..2 {
        let response = two.gateway.chat(&ask("auto", "hi")).await;
        assert_eq!(served_by(&response), "pb/model-b");
    }
    let outdated = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&outdated), "pb/model-b");
    assert_eq!(two.a.calls("model-a"), 2, "skipped while outdated");
    // The model is back (the script is spent); after the backoff a request finds out by itself.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&back), "pa/model-a");
    let state = two.gateway.gateway.state.engine.health.route("pa/model-a");
    assert_eq!(state.map(|r| r.state), Some(HealthState::Healthy));
}

#[tokio::test]
async fn an_invalid_key_is_tried_again_after_its_backoff_and_restored_when_it_answers() {
    let two = two(|c| c.set("routing.reprobe_after_ms", "400")).await;
    two.a
        .model("model-a")
        .then(Behavior::error(401, "invalid_api_key", "Invalid API key"));
    let first = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&first), "pb/model-b");
    let health = &two.gateway.gateway.state.engine.health;
    assert!(health.key_invalid("pa", &key_of("pa"), now_ms()));
    let during = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&during), "pb/model-b", "the key rests");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&after), "pa/model-a", "tried again, and it works");
    assert!(health.invalid_keys().is_empty(), "the mark is gone");
}

#[tokio::test]
async fn an_empty_completion_moves_the_request_on_and_cools_nothing_for_the_next() {
    let two = two(|c| c).await;
    two.a.model("model-a").then(Behavior::EmptyCompletion);
    let first = two.gateway.chat(&ask("auto", "an odd prompt")).await;
    assert_eq!(served_by(&first), "pb/model-b");
    let next = two.gateway.chat(&ask("auto", "another prompt")).await;
    assert_eq!(served_by(&next), "pa/model-a", "the key was not cooled");
}

#[tokio::test]
async fn a_413_for_one_large_request_leaves_the_route_open_for_the_next_small_one() {
    let two = two(|c| c).await;
    two.a.model("model-a").then(Behavior::error(
        413,
        "rate_limit_exceeded",
        "Request too large for model on tokens per minute (TPM): Limit 6000, Requested 9000",
    ));
    let large = two.gateway.chat(&ask("auto", &"x".repeat(30_000))).await;
    assert_eq!(served_by(&large), "pb/model-b");
    let small = two.gateway.chat(&ask("auto", "small")).await;
    assert_eq!(served_by(&small), "pa/model-a");
}

#[tokio::test]
async fn a_health_reset_over_http_also_clears_invalid_key_marks() {
    let two = two(|c| {
        c.set("auth.admin_token", "admin-secret")
            .set("routing.reprobe_after_ms", "3600000")
    })
    .await;
    two.a
        .model("model-a")
        .then(Behavior::error(401, "invalid_api_key", "Invalid API key"));
    let first = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&first), "pb/model-b");
    let reset = two
        .gateway
        .http
        .post(two.gateway.url("/v1/gateway/health/reset"))
        .bearer_auth("admin-secret")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200, "{}", reset.text().await.unwrap());
    let health = &two.gateway.gateway.state.engine.health;
    assert!(
        eventually(|| health.invalid_keys().is_empty()).await,
        "the gateway reloads health without the mark"
    );
    let after = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&after), "pa/model-a");
}

#[tokio::test]
async fn a_reset_header_a_year_away_cools_the_key_no_longer_than_max_cooldown() {
    let two = two(|c| c.set("routing.max_cooldown_s", "3600")).await;
    two.a
        .model("model-a")
        .then(Behavior::rate_limited(Some("31622400")));
    let first = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&first), "pb/model-b");
    let now = now_ms();
    let until = two
        .gateway
        .gateway
        .state
        .engine
        .health
        .key_cooling_until("pa", &key_of("pa"), "pa/model-a", now)
        .expect("the key cools");
    assert!(
        until <= now + 3_600_000,
        "cooling {} s, past the one-hour cap",
        (until - now) / 1000
    );
}

#[tokio::test]
async fn an_upstream_redirect_is_never_followed_with_the_key() {
    let elsewhere = Simulator::start().await;
    elsewhere.model("model-a");
    let two = two(|c| c).await;
    two.a
        .model("model-a")
        .then(Behavior::error(307, "moved", "moved").with_header(
            "location",
            &format!("{}/chat/completions", elsewhere.base_url()),
        ));
    let response = two.gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(served_by(&response), "pb/model-b");
    assert!(header(&response, "x-gateway-trail").contains("redirect"));
    assert_eq!(
        elsewhere.total_calls(),
        0,
        "nothing was sent where it pointed"
    );
}

#[tokio::test]
async fn a_silent_stream_upstream_is_left_after_the_stream_header_timeout() {
    let two = two(|c| {
        c.set("routing.header_timeout_ms", "20000")
            .set("routing.stream_header_timeout_ms", "500")
    })
    .await;
    two.a.model("model-a").then(Behavior::HangBeforeHeaders);
    let started = Instant::now();
    let response = two.gateway.chat(&ask_stream("auto", "hi")).await;
    assert_eq!(served_by(&response), "pb/model-b");
    assert!(header(&response, "x-gateway-trail").starts_with("pa/model-a:header_timeout"));
    let events = sse_data(response).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a stream gives up on silent headers after the stream timeout, not the 20 s one ({:?})",
        started.elapsed()
    );
    assert_eq!(
        two.a.calls("model-a"),
        1,
        "the silent route is not tried again"
    );
}
