//! The error table of DESIGN.md §5: every row answers with its status, its code and OpenAI's shape
//! `{"error":{"message","type","code","param"}}`; bad requests are 4xx, never 5xx, and never go upstream.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::{Behavior, Simulator};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// Reads an error response and checks its status and OpenAI shape; `code` is the expected code, or
/// `None` for "any non-empty string". Returns the headers and the body for further checks.
async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: Option<&str>,
) -> (HeaderMap, Value) {
    let actual = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("the error body reads");
    assert_eq!(actual, status, "status of the error response; body: {text}");
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "an error is JSON, got content-type {content_type:?}; body: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the error body is JSON ({e}): {text}"));
    let error = body
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("the body holds an `error` object: {text}"));
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        !message.is_empty(),
        "`error.message` is a non-empty string: {text}"
    );
    assert!(
        error.get("type").is_some_and(Value::is_string),
        "`error.type` is a string: {text}"
    );
    match code {
        Some(code) => assert_eq!(
            error.get("code"),
            Some(&json!(code)),
            "`error.code`: {text}"
        ),
        None => assert!(
            error
                .get("code")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.is_empty()),
            "`error.code` is a non-empty string: {text}"
        ),
    }
    let param = error
        .get("param")
        .unwrap_or_else(|| panic!("`error.param` is present: {text}"));
    assert!(
        param.is_null() || param.is_string(),
        "`error.param` is a string or null: {text}"
    );
    (headers, body)
}

/// `Retry-After` in whole seconds (panics when absent or not a number).
fn retry_after(headers: &HeaderMap) -> u64 {
    let value = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a Retry-After header, got headers {headers:?}"));
    value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is whole seconds, got {value:?}"))
}

/// One simulator with one healthy model behind one route.
async fn one_route() -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("sim-a");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route("pa", "sim-a", 1)
        .start()
        .await;
    (sim, gateway)
}

/// Sends `body` as is to a fresh gateway; expects 400 `invalid_request` whose `param` names `param`
/// (when given), and no upstream call.
async fn refused_as_invalid(body: impl Into<reqwest::Body>, param: Option<&str>) {
    let (sim, gateway) = one_route().await;
    let response = gateway.chat_raw(body).await;
    let (_, body) = expect_error(response, 400, Some("invalid_request")).await;
    if let Some(param) = param {
        let named = body["error"]["param"].as_str().unwrap_or_default();
        assert!(
            named.contains(param),
            "`error.param` names `{param}`, got {:?}",
            body["error"]["param"]
        );
    }
    assert_eq!(
        sim.total_calls(),
        0,
        "an invalid request never goes upstream"
    );
}

fn json_bytes(value: Value) -> String {
    value.to_string()
}

#[tokio::test]
async fn malformed_json_is_an_invalid_request() {
    refused_as_invalid("{not json", None).await;
}

#[tokio::test]
async fn a_json_array_body_is_an_invalid_request() {
    refused_as_invalid(json_bytes(json!([ask("auto", "hello")])), None).await;
}

#[tokio::test]
async fn a_numeric_model_is_an_invalid_request_naming_model() {
    let body = json!({"model": 3, "messages": [{"role": "user", "content": "hi"}]});
    refused_as_invalid(json_bytes(body), Some("model")).await;
}

#[tokio::test]
async fn a_string_stream_flag_is_an_invalid_request_naming_stream() {
    let body =
        json!({"model": "auto", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]});
    refused_as_invalid(json_bytes(body), Some("stream")).await;
}

#[tokio::test]
async fn negative_max_tokens_is_an_invalid_request_naming_max_tokens() {
    let body =
        json!({"model": "auto", "max_tokens": -1, "messages": [{"role": "user", "content": "hi"}]});
    refused_as_invalid(json_bytes(body), Some("max_tokens")).await;
}

#[tokio::test]
async fn a_string_temperature_is_an_invalid_request_naming_temperature() {
    let body = json!({"model": "auto", "temperature": "hot", "messages": [{"role": "user", "content": "hi"}]});
    refused_as_invalid(json_bytes(body), Some("temperature")).await;
}

#[tokio::test]
async fn numeric_message_content_is_an_invalid_request_naming_content() {
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": 5}]});
    refused_as_invalid(json_bytes(body), Some("content")).await;
}

#[tokio::test]
async fn an_unknown_role_is_an_invalid_request_naming_role() {
    let body = json!({"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]});
    refused_as_invalid(json_bytes(body), Some("role")).await;
}

#[tokio::test]
async fn missing_messages_is_an_invalid_request_naming_messages() {
    refused_as_invalid(json_bytes(json!({"model": "auto"})), Some("messages")).await;
}

#[tokio::test]
async fn empty_messages_is_an_invalid_request_naming_messages() {
    refused_as_invalid(
        json_bytes(json!({"model": "auto", "messages": []})),
        Some("messages"),
    )
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_request_too_large() {
    let sim = Simulator::start().await;
    sim.model("sim-a");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route("pa", "sim-a", 1)
        .set("server.max_body_bytes", "2048")
        .start()
        .await;
    let body = ask("auto", &"x".repeat(10 * 1024)).to_string();
    assert!(body.len() > 10_000);
    let response = gateway.chat_raw(body).await;
    expect_error(response, 413, Some("request_too_large")).await;
    assert_eq!(
        sim.total_calls(),
        0,
        "an oversized request never goes upstream"
    );
}

#[tokio::test]
async fn a_prompt_larger_than_every_context_window_is_context_length_exceeded() {
    let sim = Simulator::start().await;
    sim.model("sim-small");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route_with("pa", "sim-small", 1, "context_window = 1000")
        .start()
        .await;
    // About 5000 tokens at four characters a token: words, so no tokenizer squeezes it.
    let prompt = "lorem ipsum dolor sit amet ".repeat(20_000 / 27 + 1);
    let response = gateway.chat(&ask("auto", &prompt)).await;
    expect_error(response, 400, Some("context_length_exceeded")).await;
    assert_eq!(
        sim.total_calls(),
        0,
        "a prompt no route can hold never goes upstream"
    );
}

#[tokio::test]
async fn a_strict_unknown_model_is_model_not_found() {
    let (sim, gateway) = one_route().await;
    let response = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("X-FreeRouter-Strict", "true")
        .json(&ask("nope", "hello"))
        .send()
        .await
        .expect("the gateway answers");
    expect_error(response, 404, Some("model_not_found")).await;
    assert_eq!(sim.total_calls(), 0, "strict forbids any other model");
}

#[tokio::test]
async fn a_strict_request_for_a_disabled_route_is_model_not_found() {
    let sim = Simulator::start().await;
    sim.model("sim-off");
    sim.model("sim-on");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route_with(
            "pa",
            "sim-off",
            1,
            "context_window = 100000\nenabled = false",
        )
        .route("pa", "sim-on", 2)
        .start()
        .await;
    let response = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("X-FreeRouter-Strict", "true")
        .json(&ask("pa/sim-off", "hello"))
        .send()
        .await
        .expect("the gateway answers");
    expect_error(response, 404, Some("model_not_found")).await;
    assert_eq!(sim.calls("sim-off"), 0, "a disabled route is never called");
    assert_eq!(sim.calls("sim-on"), 0, "strict forbids any other model");
}

#[tokio::test]
async fn a_non_strict_unknown_model_is_served_by_the_ranked_order() {
    let sim = Simulator::start().await;
    sim.model("sim-first").answer("from the first");
    sim.model("sim-second");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route("pa", "sim-second", 2)
        .route("pa", "sim-first", 1)
        .start()
        .await;
    let response = gateway.chat(&ask("nope", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pa/sim-first");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "from the first");
    assert_eq!((sim.calls("sim-first"), sim.calls("sim-second")), (1, 0));
}

#[tokio::test]
async fn a_client_over_its_rate_limit_is_rate_limited_with_retry_after() {
    let sim = Simulator::start().await;
    sim.model("sim-a");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route("pa", "sim-a", 1)
        .set("limits.per_client_burst", "2")
        .set("limits.per_client_per_second", "1")
        .start()
        .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for i in 0..5 {
        let response = gateway.chat(&ask("auto", &format!("quick {i}"))).await;
        let status = response.status().as_u16();
        statuses.push(status);
        if status == 429 && limited.is_none() {
            limited = Some(response);
        }
    }
    assert!(
        statuses.iter().all(|s| *s < 500),
        "no 5xx, got {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "each request is served or refused, got {statuses:?}"
    );
    let limited = limited
        .unwrap_or_else(|| panic!("at least one of 5 quick requests is refused, got {statuses:?}"));
    let (headers, _) = expect_error(limited, 429, Some("rate_limited")).await;
    assert!(
        retry_after(&headers) >= 1,
        "Retry-After is at least a second"
    );
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        sim.calls("sim-a"),
        served,
        "refused requests never go upstream"
    );
}

#[tokio::test]
async fn every_route_cooling_is_quota_exhausted_with_the_soonest_reset() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").then(Behavior::rate_limited(Some("60")));
    b.model("model-b").then(Behavior::rate_limited(Some("60")));
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .start()
        .await;

    let response = gateway.chat(&ask("auto", "hello")).await;
    let (headers, body) = expect_error(response, 429, Some("quota_exhausted")).await;
    let wait = retry_after(&headers);
    assert!(
        (55..=60).contains(&wait),
        "Retry-After is the soonest reset (~60 s), got {wait}"
    );
    let attempts = body["error"]["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("an `attempts` array where routes were tried: {body}"));
    assert_eq!(attempts.len(), 2, "both routes were tried: {body}");
    assert_eq!((a.calls("model-a"), b.calls("model-b")), (1, 1));

    let response = gateway.chat(&ask("auto", "again")).await;
    let (headers, _) = expect_error(response, 429, Some("quota_exhausted")).await;
    let wait = retry_after(&headers);
    assert!(
        (55..=60).contains(&wait),
        "Retry-After is still the soonest reset, got {wait}"
    );
    assert_eq!(
        (a.calls("model-a"), b.calls("model-b")),
        (1, 1),
        "cooling routes are not called again"
    );
}

#[tokio::test]
async fn routes_that_all_fail_upstream_are_all_routes_failed() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a")
        .always(Behavior::error(500, "server_error", "boom a"));
    b.model("model-b")
        .always(Behavior::error(500, "server_error", "boom b"));
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    let (_, body) = expect_error(response, 502, Some("all_routes_failed")).await;
    let attempts = body["error"]["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("an `attempts` array where routes were tried: {body}"));
    assert!(attempts.len() >= 2, "both routes were tried: {body}");
    assert!(a.calls("model-a") >= 1 && b.calls("model-b") >= 1);
}

#[tokio::test]
async fn no_configured_route_is_no_routes_available_naming_the_variables_to_set() {
    let gateway = GatewayConfig::new().start().await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    let (_, body) = expect_error(response, 503, Some("no_routes_available")).await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("GROQ_API_KEY"),
        "the message says which variables to set: {message}"
    );
}

#[tokio::test]
async fn models_lists_the_auto_modes_first_then_the_routes_by_rank() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    for model in ["model-a", "model-b"] {
        a.model(model);
    }
    b.model("model-c");
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pb", "model-c", 3)
        .route("pa", "model-b", 2)
        .route("pa", "model-a", 1)
        .start()
        .await;
    let response = gateway.get("/v1/models").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a `data` array: {body}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        [
            "auto",
            "auto-fast",
            "auto-balanced",
            "pa/model-a",
            "pa/model-b",
            "pb/model-c"
        ]
    );
}

#[tokio::test]
async fn the_response_model_is_the_upstreams() {
    let sim = Simulator::start().await;
    sim.model("sim-a").response_model("sim-upstream-2025");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route("pa", "sim-a", 1)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-model"), "sim-upstream-2025");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "sim-upstream-2025");
}

#[tokio::test]
async fn an_unknown_path_is_a_404_in_openai_shape() {
    let (sim, gateway) = one_route().await;
    let response = gateway.get("/v1/no-such-thing").await;
    expect_error(response, 404, None).await;
    let response = gateway
        .http
        .post(gateway.url("/v2/chat/completions"))
        .json(&ask("auto", "hello"))
        .send()
        .await
        .expect("the gateway answers");
    expect_error(response, 404, None).await;
    assert_eq!(sim.total_calls(), 0);
}

#[tokio::test]
async fn health_and_ready_answer_200() {
    let (_sim, gateway) = one_route().await;
    let response = gateway.get("/health").await;
    assert_eq!(response.status(), 200);
    let response = gateway.get("/ready").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("/ready answers JSON ({e}): {text}"));
    assert!(body.is_object(), "/ready answers a JSON object: {text}");
}
