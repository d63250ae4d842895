//! `POST /v1/messages` over raw HTTP: Anthropic's event sequence, tools both ways, fallback and a
//! rescued stream through the same engine, Anthropic's error shape, and what Claude Code sends.

use freerouter_tests::harness::{GatewayConfig, TestGateway, header};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};
use std::time::Duration;

const ANSWER: &str = "The quick brown fox jumps over the lazy dog and keeps running far away.";

/// Both routes: windows as large as today's free tiers have (Claude Code asks for up to 32,000
/// output tokens, which routing counts against the window), tools and vision.
const ROUTE: &str = "context_window = 131072\ntags = [\"tools\", \"vision\"]";

/// Two simulated providers serving the same answer, ranked a then b.
async fn two_routes(
    configure: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> (Simulator, Simulator, TestGateway) {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").answer(ANSWER);
    b.model("model-b").answer(ANSWER);
    let config = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route_with("pa", "model-a", 1, ROUTE)
        .route_with("pb", "model-b", 2, ROUTE);
    let gateway = configure(config).start().await;
    (a, b, gateway)
}

/// `POST path` with Anthropic's headers.
async fn post(gateway: &TestGateway, path: &str, body: &Value) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url(path))
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .expect("the gateway answers")
}

fn ask(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 1024, "stream": stream,
           "messages": [{"role": "user", "content": text}]})
}

/// An Anthropic event stream read whole: `(event, data)` pairs, each event's name checked
/// against its data's `type`.
async fn events(response: reqwest::Response) -> Vec<(String, Value)> {
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the stream ends within 20 s")
        .expect("the stream reads");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = None;
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                }
                if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str::<Value>(v).expect("data is JSON"));
                }
            }
            let (name, data) = (name.expect("an event name"), data.expect("a data line"));
            assert_eq!(data["type"], name.as_str(), "{e}");
            (name, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

fn text_of(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_streamed_message_has_anthropics_event_sequence() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    let response = post(&gateway, "/v1/messages", &ask("auto", "tell me", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    assert!(header(&response, "x-request-id").starts_with("req_"));
    let seen = events(response).await;
    let names = names(&seen);
    assert_eq!(names[..3], ["message_start", "ping", "content_block_start"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(
        names[3..names.len() - 3]
            .iter()
            .all(|n| *n == "content_block_delta")
    );
    assert_eq!(text_of(&seen), ANSWER);
    let start = &seen[0].1["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["content"], json!([]));
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let delta = &seen[seen.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let sent = &a.requests("model-a")[0].body;
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "tell me"}])
    );
}

#[tokio::test]
async fn a_message_answers_in_anthropics_shape() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    a.model("model-a").response_model("model-a-2025");
    let response = post(&gateway, "/v1/messages", &ask("auto", "tell me", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-model"), "model-a-2025");
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["model"], "model-a-2025");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": ANSWER}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_tool_use_round_trip_is_translated_both_ways() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    let call = Behavior::ToolCall {
        name: "get_weather".into(),
        arguments: "{\"city\":\"Paris\"}".into(),
    };
    a.model("model-a").then(call.clone()).then(call);
    let tools = json!([{"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let first = json!({"model": "auto", "max_tokens": 256, "tools": tools,
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let message: Value = post(&gateway, "/v1/messages", &first)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(message["stop_reason"], "tool_use");
    let tool_use = &message["content"][0];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(tool_use["name"], "get_weather");
    assert_eq!(tool_use["input"], json!({"city": "Paris"}));
    let sent = &a.requests("model-a")[0].body;
    assert_eq!(sent["tool_choice"], "required");
    assert_eq!(
        sent["tools"][0]["function"]["parameters"]["required"],
        json!(["city"])
    );

    // Streamed, the input arrives as input_json_delta fragments that join to the same object.
    let mut streamed = first.clone();
    streamed["stream"] = json!(true);
    let seen = events(post(&gateway, "/v1/messages", &streamed).await).await;
    let start = seen
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    let index = &start.1["index"];
    let partial: String = seen
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && &d["index"] == index)
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(seen[seen.len() - 2].1["delta"]["stop_reason"], "tool_use");

    // The result goes back as a tool message answering the call.
    let id = tool_use["id"].as_str().unwrap();
    let second = json!({"model": "auto", "max_tokens": 256, "tools": tools, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
                                      "content": [{"type": "text", "text": "18°C, sunny"}]}]}
    ]});
    let answer: Value = post(&gateway, "/v1/messages", &second)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["content"][0]["text"], ANSWER);
    let sent = &a.requests("model-a")[2].body;
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], id);
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": id, "content": "18°C, sunny"})
    );
}

#[tokio::test]
async fn a_429_at_rank_1_falls_back_to_rank_2_on_messages() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::rate_limited(Some("60")));
    let response = post(&gateway, "/v1/messages", &ask("auto", "tell me", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pb/model-b:ok"
    );
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["content"][0]["text"], ANSWER);
    assert_eq!((a.calls("model-a"), b.calls("model-b")), (1, 1));
}

#[tokio::test]
async fn a_cut_stream_is_rescued_on_messages_with_the_text_continuous() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::CutAfter { chunks: 4 });
    let response = post(&gateway, "/v1/messages", &ask("auto", "tell me", true)).await;
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let seen = events(response).await;
    assert_eq!(text_of(&seen), ANSWER, "the client reads the whole answer");
    let names = names(&seen);
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(!names.contains(&"error"));
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "content_block_start")
            .count(),
        1,
        "one text block, continued across the rescue"
    );
    let rescue = &b.requests("model-b")[0].body;
    let prefill = rescue["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(prefill["role"], "assistant");
    assert!(ANSWER.starts_with(prefill["content"].as_str().unwrap()));
}

#[tokio::test]
async fn a_cut_stream_no_route_can_continue_ends_with_an_error_event() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::CutAfter { chunks: 3 });
    b.model("model-b")
        .refuse_prefill(true)
        .answer("Something else entirely, said differently.");
    let seen = events(post(&gateway, "/v1/messages", &ask("auto", "tell me", true)).await).await;
    let (last, data) = seen.last().unwrap();
    assert_eq!(last, "error", "{seen:?}");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(
        !names(&seen).contains(&"message_stop"),
        "never closed as if complete"
    );
    let text = text_of(&seen);
    assert!(ANSWER.starts_with(&text) && text.len() < ANSWER.len());
}

#[tokio::test]
async fn a_bad_body_gets_anthropics_own_400() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    let cases = [
        (json!({"model": "auto", "max_tokens": 5}), "messages"),
        (
            json!({"model": "auto", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}),
            "messages[0].content[0]",
        ),
        (
            json!({"model": "auto", "messages": [{"role": "user", "content": "search"}],
                   "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}),
            "tools[0].type",
        ),
    ];
    for (body, field) in cases {
        let response = post(&gateway, "/v1/messages", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert!(header(&response, "x-request-id").starts_with("req_"));
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
        assert!(error["request_id"].as_str().unwrap().starts_with("req_"));
    }
    let response = gateway
        .http
        .post(gateway.url("/v1/messages"))
        .header("content-type", "application/json")
        .body("{\"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(a.calls("model-a"), 0, "nothing went upstream");
}

#[tokio::test]
async fn what_claude_code_sends_is_accepted() {
    let (a, _b, gateway) = two_routes(|c| c.set("auth.api_keys", "sk-claude-code")).await;
    let body = json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>This is a reminder.</system-reminder>"},
                {"type": "text", "text": "What is in this folder?", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I will list it.", "signature": "ErUBCkYIBRgCIkD1t3d5x"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                {"type": "tool_use", "id": "toolu_01KgmwWZg3zNq1", "name": "LS",
                 "input": {"path": "/repo"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01KgmwWZg3zNq1",
                 "content": "README.md\nsrc/", "cache_control": {"type": "ephemeral"}}
            ]}
        ],
        "tools": [{"name": "LS", "description": "Lists files",
                   "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                                    "required": ["path"], "additionalProperties": false,
                                    "$schema": "http://json-schema.org/draft-07/schema#"},
                   "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user_5f1e_account__session_8c2a4d"},
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "temperature": 1
    });
    let response = gateway
        .http
        .post(gateway.url("/v1/messages?beta=true"))
        .header("x-api-key", "sk-claude-code")
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
        )
        .header("anthropic-dangerous-direct-browser-access", "true")
        .header("x-app", "cli")
        .header("user-agent", "claude-cli/2.0.14 (external, cli)")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    if status != 200 {
        panic!("{status}: {}", response.text().await.unwrap());
    }
    let seen = events(response).await;
    assert_eq!(text_of(&seen), ANSWER);
    assert_eq!(seen.last().unwrap().0, "message_stop");

    let sent = &a.requests("model-a")[0];
    let text = sent.body.to_string();
    for absent in [
        "cache_control",
        "signature",
        "thinking",
        "I will list it",
        "EmwKAhgB",
    ] {
        assert!(
            !text.contains(absent),
            "{absent} reached the upstream: {text}"
        );
    }
    assert_eq!(sent.body["user"], "user_5f1e_account__session_8c2a4d");
    assert!(
        sent.body.get("reasoning_effort").is_none(),
        "the thinking budget reaches only routes tagged reasoning"
    );
    assert_eq!(sent.body["model"], "model-a");
    let roles: Vec<&str> = sent.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool"]);
    assert!(
        sent.headers
            .iter()
            .all(|(name, _)| !name.starts_with("anthropic") && name != "x-app"),
        "no client header is forwarded"
    );

    // The same with a Bearer token (what ANTHROPIC_AUTH_TOKEN sends) instead of x-api-key.
    let response = gateway
        .http
        .post(gateway.url("/v1/messages?beta=true"))
        .bearer_auth("sk-claude-code")
        .header("anthropic-version", "2023-06-01")
        .json(&ask("claude-haiku-4-5-20251001", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_thinking_budget_reaches_a_reasoning_route_as_reasoning_effort() {
    let sim = Simulator::start().await;
    sim.model("thinker").answer(ANSWER);
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route_with(
            "p",
            "thinker",
            1,
            "context_window = 131072\ntags = [\"reasoning\"]",
        )
        .start()
        .await;
    let mut body = ask("claude-opus-4-1", "think hard", false);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let response = post(&gateway, "/v1/messages", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(sim.requests("thinker")[0].body["reasoning_effort"], "low");
}

#[tokio::test]
async fn claude_names_follow_the_tier_mapping_and_are_never_strict() {
    let (a, b, gateway) = two_routes(|c| {
        c.set("anthropic.models.opus", "pb/model-b")
            .set("anthropic.models.haiku", "auto")
    })
    .await;
    let response = post(
        &gateway,
        "/v1/messages",
        &ask("claude-opus-4-1-20250805", "hi", false),
    )
    .await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "pb/model-b",
        "mapped to its route"
    );

    let response = gateway
        .http
        .post(gateway.url("/v1/messages"))
        .header("x-freerouter-strict", "true")
        .json(&ask("claude-sonnet-4-5", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "an unmapped Claude name is auto, never a 404"
    );
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");

    let response = gateway
        .http
        .post(gateway.url("/v1/messages"))
        .header("x-freerouter-strict", "true")
        .json(&ask("no-such-model", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "other names stay strict when asked");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "not_found_error");
    assert_eq!((a.calls("model-a"), b.calls("model-b")), (1, 1));
}

#[tokio::test]
async fn routing_errors_come_in_anthropics_shape_with_their_status_and_headers() {
    let (a, b, gateway) = two_routes(|c| c.set("auth.api_keys", "sk-right")).await;
    let with_key = |path: &str, body: &Value| {
        gateway
            .http
            .post(gateway.url(path))
            .header("x-api-key", "sk-right")
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
    };

    // Authentication is refused by the layer in front, yet in Anthropic's shape.
    let response = gateway
        .http
        .post(gateway.url("/v1/messages"))
        .header("x-api-key", "sk-wrong")
        .json(&ask("auto", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "authentication_error");

    a.model("model-a")
        .always(Behavior::error(500, "server_error", "boom"));
    b.model("model-b")
        .always(Behavior::error(500, "server_error", "boom"));
    let response = with_key("/v1/messages", &ask("auto", "hi", false))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(header(&response, "x-gateway-trail").contains("pa/model-a:"));
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "api_error");

    a.model("model-a")
        .always(Behavior::rate_limited(Some("60")));
    b.model("model-b")
        .always(Behavior::rate_limited(Some("60")));
    let response = with_key("/v1/messages", &ask("auto", "hi", true))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn no_route_at_all_is_an_overloaded_error() {
    let gateway = GatewayConfig::new().start().await;
    let response = post(&gateway, "/v1/messages", &ask("auto", "hi", false)).await;
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GROQ_API_KEY")
    );
}

#[tokio::test]
async fn count_tokens_answers_from_the_estimate_without_an_upstream() {
    let (a, b, gateway) = two_routes(|c| c).await;
    let gateway = &gateway;
    let count = |text: String| async move {
        let body = json!({"model": "claude-sonnet-4-5", "system": "You are brief.",
                          "messages": [{"role": "user", "content": text}]});
        let response = post(gateway, "/v1/messages/count_tokens", &body).await;
        assert_eq!(response.status(), 200);
        let counted: Value = response.json().await.unwrap();
        counted["input_tokens"].as_u64().unwrap()
    };
    let small = count("Hello, Claude".into()).await;
    let large = count("word ".repeat(2000)).await;
    assert!(small > 0 && small < 30, "{small}");
    assert!(large >= 2500, "{large}");
    assert_eq!(a.total_calls() + b.total_calls(), 0);
    let response = post(gateway, "/v1/messages/count_tokens", &json!({"model": "x"})).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn the_model_list_has_anthropics_shape_when_asked_with_anthropic_version() {
    let (_a, _b, gateway) = two_routes(|c| c).await;
    let anthropic: Value = gateway
        .http
        .get(gateway.url("/v1/models"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = anthropic["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["type"], "model");
            assert!(m["created_at"].is_string() && m["display_name"].is_string());
            m["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        [
            "auto",
            "auto-fast",
            "auto-balanced",
            "pa/model-a",
            "pb/model-b"
        ]
    );
    assert_eq!(anthropic["has_more"], false);
    assert_eq!(anthropic["first_id"], "auto");
    assert_eq!(anthropic["last_id"], "pb/model-b");
    let openai: Value = gateway.get("/v1/models").await.json().await.unwrap();
    assert_eq!(
        openai["object"], "list",
        "without the header, OpenAI's shape"
    );
}
