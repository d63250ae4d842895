//! Capability filters: a request that needs tools, images, JSON mode or a large window only reaches
//! routes that have them; when none has, the client gets a 400 in OpenAI's shape, and no upstream
//! is called.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::Simulator;
use serde_json::{Value, json};

/// Rank 1 with no tags, rank 2 with `tools`, rank 3 with `vision` and `json`; all large windows.
async fn tagged_routes() -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    for model in ["plain", "tooled", "seeing"] {
        sim.model(model).answer(&format!("answer from {model}"));
    }
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route_with("lab", "plain", 1, "context_window = 131072")
        .route_with(
            "lab",
            "tooled",
            2,
            "context_window = 131072\ntags = [\"tools\"]",
        )
        .route_with(
            "lab",
            "seeing",
            3,
            "context_window = 131072\ntags = [\"vision\", \"json\"]",
        )
        .start()
        .await;
    (sim, gateway)
}

/// (plain, tooled, seeing) call counts.
fn calls(sim: &Simulator) -> (usize, usize, usize) {
    (sim.calls("plain"), sim.calls("tooled"), sim.calls("seeing"))
}

fn weather_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }
        }
    })
}

fn image_message() -> Value {
    json!({
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        ]
    })
}

/// Asserts an OpenAI-shaped error with this status and code; returns the body.
async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("a JSON error body");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["type"], "invalid_request_error", "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error.get("param").is_some(), "param is present: {body}");
    body
}

#[tokio::test]
async fn a_plain_request_is_served_by_rank_one() {
    let (sim, gateway) = tagged_routes().await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/plain");
    assert_eq!(calls(&sim), (1, 0, 0));
}

#[tokio::test]
async fn a_request_with_tools_never_reaches_a_route_without_tools() {
    let (sim, gateway) = tagged_routes().await;
    let mut body = ask("auto", "What is the weather in Paris?");
    body["tools"] = json!([weather_tool()]);
    let response = gateway.chat(&body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/tooled");
    assert_eq!(header(&response, "x-gateway-attempts"), "1");
    assert_eq!(calls(&sim), (0, 1, 0), "rank 1 has no tools: never called");
    // The tool went upstream untouched.
    let sent = &sim.requests("tooled")[0].body;
    assert_eq!(sent["tools"], json!([weather_tool()]));
}

#[tokio::test]
async fn an_image_request_only_reaches_vision_routes() {
    let (sim, gateway) = tagged_routes().await;
    let body = json!({"model": "auto", "messages": [image_message()]});
    let response = gateway.chat(&body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/seeing");
    assert_eq!(calls(&sim), (0, 0, 1));
    let sent = &sim.requests("seeing")[0].body;
    assert_eq!(
        sent["messages"][0],
        image_message(),
        "the image went as sent"
    );
}

#[tokio::test]
async fn json_mode_only_reaches_json_routes() {
    let (sim, gateway) = tagged_routes().await;
    let mut body = ask("auto", "Answer in JSON.");
    body["response_format"] = json!({"type": "json_object"});
    let response = gateway.chat(&body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/seeing");
    assert_eq!(calls(&sim), (0, 0, 1));
    assert_eq!(
        sim.requests("seeing")[0].body["response_format"],
        json!({"type": "json_object"})
    );
}

#[tokio::test]
async fn a_model_named_without_the_capability_is_passed_over_for_one_with_it() {
    let (sim, gateway) = tagged_routes().await;
    let mut body = ask("lab/plain", "What is the weather in Paris?");
    body["tools"] = json!([weather_tool()]);
    let response = gateway.chat(&body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/tooled");
    assert_eq!(calls(&sim), (0, 1, 0));
}

#[tokio::test]
async fn tools_and_an_image_with_no_route_having_both_is_unsupported_capability() {
    let (sim, gateway) = tagged_routes().await;
    let body = json!({
        "model": "auto",
        "messages": [image_message()],
        "tools": [weather_tool()],
    });
    let response = gateway.chat(&body).await;
    assert_error(response, 400, "unsupported_capability").await;
    assert_eq!(sim.total_calls(), 0, "no upstream was called");
}

#[tokio::test]
async fn json_mode_with_no_json_route_is_unsupported_capability() {
    let sim = Simulator::start().await;
    sim.model("plain");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route_with("lab", "plain", 1, "tags = [\"tools\"]")
        .start()
        .await;
    let mut body = ask("auto", "Answer in JSON.");
    body["response_format"] = json!({"type": "json_object"});
    let response = gateway.chat(&body).await;
    let error = assert_error(response, 400, "unsupported_capability").await;
    assert!(
        error["error"]["message"].as_str().unwrap().contains("json"),
        "the message says what is missing: {error}"
    );
    assert_eq!(sim.total_calls(), 0);
}

/// A user message whose estimated size is about 40,000 tokens (characters / 4).
fn forty_thousand_token_prompt() -> Value {
    ask("auto", &"word ".repeat(32_000))
}

#[tokio::test]
async fn a_prompt_of_40k_tokens_skips_8k_window_routes() {
    let sim = Simulator::start().await;
    sim.model("small");
    sim.model("large");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route_with("lab", "small", 1, "context_window = 8192")
        .route_with("lab", "large", 2, "context_window = 131072")
        .start()
        .await;
    let response = gateway.chat(&forty_thousand_token_prompt()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/large");
    assert_eq!(header(&response, "x-gateway-attempts"), "1");
    assert_eq!(sim.calls("small"), 0, "the 8k route is never called");
    assert_eq!(sim.calls("large"), 1);
    // A short prompt still goes to rank 1.
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(header(&response, "x-gateway-route"), "lab/small");
}

#[tokio::test]
async fn a_prompt_of_40k_tokens_with_only_8k_routes_is_context_length_exceeded() {
    let sim = Simulator::start().await;
    sim.model("small");
    sim.model("small-too");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route_with("lab", "small", 1, "context_window = 8192")
        .route_with("lab", "small-too", 2, "context_window = 8192")
        .start()
        .await;
    let response = gateway.chat(&forty_thousand_token_prompt()).await;
    assert_error(response, 400, "context_length_exceeded").await;
    assert_eq!(sim.total_calls(), 0, "no upstream was called");
}
