//! `/v1/responses` and `/v1/completions` over raw HTTP: the Responses event sequence, fallback,
//! rescue, refusals in OpenAI's shape, what Codex CLI sends, and legacy completions.

use freerouter_tests::harness::{GatewayConfig, TestGateway, header};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};
use std::time::Duration;

const ANSWER: &str = "The quick brown fox jumps over the lazy dog and keeps running far away.";

async fn post(gateway: &TestGateway, path: &str, body: &Value) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url(path))
        .json(body)
        .send()
        .await
        .expect("the gateway answers")
}

/// The `event:`/`data:` pairs of a Responses stream, each event's name checked against its type.
async fn response_events(response: reqwest::Response) -> Vec<Value> {
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the stream ends within 20 s")
        .expect("the stream reads");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|event| {
            let mut name = None;
            let mut data = None;
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str::<Value>(v).expect("each event is JSON"));
                }
            }
            let data = data.expect("each event has data");
            assert_eq!(Some(data["type"].as_str().unwrap().to_string()), name);
            data
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn text_deltas(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect()
}

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
        .route_with(
            "pa",
            "model-a",
            1,
            "context_window = 100000\ntags = [\"tools\", \"json\"]",
        )
        .route_with(
            "pb",
            "model-b",
            2,
            "context_window = 100000\ntags = [\"tools\", \"json\"]",
        );
    let gateway = configure(config).start().await;
    (a, b, gateway)
}

#[tokio::test]
async fn a_responses_stream_is_the_event_sequence_with_sequence_numbers() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    a.model("model-a").response_model("model-a-2025");
    let response = post(
        &gateway,
        "/v1/responses",
        &json!({"model": "auto", "input": "tell me", "stream": true}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    assert!(header(&response, "x-request-id").starts_with("req_"));
    let events = response_events(response).await;
    let kinds = kinds(&events);
    assert_eq!(
        kinds[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        kinds[kinds.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert!(
        kinds[4..kinds.len() - 4]
            .iter()
            .all(|k| *k == "response.output_text.delta")
    );
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], n as u64, "numbered in order");
    }
    assert_eq!(text_deltas(&events), ANSWER);
    let created = &events[0]["response"];
    assert!(created["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(created["status"], "in_progress");
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["id"], created["id"]);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["model"], "model-a-2025");
    assert_eq!(done["output"][0]["content"][0]["text"], ANSWER);
    assert!(done["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let sent = a.requests("model-a");
    assert_eq!(
        sent[0].body["messages"],
        json!([{"role": "user", "content": "tell me"}])
    );
    assert_eq!(sent[0].body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn a_whole_response_has_output_items_output_text_and_usage() {
    let (_a, _b, gateway) = two_routes(|c| c).await;
    let response = post(
        &gateway,
        "/v1/responses",
        &json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
                "instructions": "be brief", "max_output_tokens": 64}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["output_text"], ANSWER);
    assert_eq!(body["output"][0]["type"], "message");
    assert_eq!(body["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(body["instructions"], "be brief");
    assert_eq!(body["max_output_tokens"], 64);
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_429_at_rank_one_falls_back_to_rank_two_on_responses() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a")
        .always(Behavior::rate_limited(Some("60")));
    let response = post(
        &gateway,
        "/v1/responses",
        &json!({"input": "tell me", "stream": true}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pb/model-b:ok"
    );
    let events = response_events(response).await;
    assert_eq!(text_deltas(&events), ANSWER);
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    assert_eq!(b.calls("model-b"), 1);
    // And the next one, whole, does not even try rank 1 while it cools.
    let whole = post(&gateway, "/v1/responses", &json!({"input": "again"})).await;
    assert_eq!(header(&whole, "x-gateway-trail"), "pb/model-b:ok");
    let body: Value = whole.json().await.unwrap();
    assert_eq!(body["output_text"], ANSWER);
}

#[tokio::test]
async fn a_cut_responses_stream_is_rescued_with_the_text_continuous() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::CutAfter { chunks: 4 });
    let response = post(
        &gateway,
        "/v1/responses",
        &json!({"input": "tell me", "stream": true}),
    )
    .await;
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let events = response_events(response).await;
    assert_eq!(
        text_deltas(&events),
        ANSWER,
        "one answer, nothing doubled or lost"
    );
    let kinds = kinds(&events);
    assert!(!kinds.contains(&"response.failed") && !kinds.contains(&"error"));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "response.output_item.added")
            .count(),
        1,
        "the rescue continues the same message item"
    );
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], ANSWER);
    assert_eq!(b.calls("model-b"), 1);
}

#[tokio::test]
async fn a_cut_no_route_can_continue_fails_the_response() {
    let sim = Simulator::start().await;
    sim.model("only")
        .answer(ANSWER)
        .then(Behavior::CutAfter { chunks: 3 });
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route("p", "only", 1)
        .start()
        .await;
    let response = post(
        &gateway,
        "/v1/responses",
        &json!({"input": "tell me", "stream": true}),
    )
    .await;
    let events = response_events(response).await;
    let kinds = kinds(&events);
    assert_eq!(kinds[kinds.len() - 2..], ["error", "response.failed"]);
    assert!(!kinds.contains(&"response.completed"));
    let error = &events[events.len() - 2];
    assert_eq!(error["code"], "stream_interrupted");
    let failed = &events.last().unwrap()["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["output"][0]["status"], "incomplete");
    assert!(ANSWER.starts_with(&text_deltas(&events)));
}

#[tokio::test]
async fn bad_responses_bodies_get_a_400_in_openais_shape_naming_the_field() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    let raw = gateway
        .http
        .post(gateway.url("/v1/responses"))
        .header("content-type", "application/json")
        .body("{\"input\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_request");
    for (request, param) in [
        (json!({"model": "auto"}), "input"),
        (json!({"input": 5}), "input"),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0]",
        ),
        (
            json!({"input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}),
            "tools[0].type",
        ),
        (json!({"input": "x", "background": true}), "background"),
        (json!({"input": "x", "store": true}), "store"),
        (
            json!({"input": "x", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
    ] {
        let response = post(&gateway, "/v1/responses", &request).await;
        assert_eq!(response.status(), 400, "{request}");
        assert!(header(&response, "x-request-id").starts_with("req_"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], param, "{request}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(param.split('[').next().unwrap())
        );
    }
    let store = post(
        &gateway,
        "/v1/responses",
        &json!({"input": "x", "store": true}),
    )
    .await;
    let body: Value = store.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_disabled");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("storage.responses_retention_hours")
    );
    assert_eq!(a.calls("model-a"), 0, "nothing reached an upstream");
}

/// A request shaped as Codex CLI sends one, mid-task: instructions, a developer message, a
/// reasoning item it replays, a function call and a custom (apply_patch) call with their outputs,
/// function, custom, namespaced and hosted tools, and the fields it always adds.
fn codex_request() -> Value {
    json!({
        "model": "auto",
        "instructions": "You are Codex, a coding agent.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix the typo in a.txt"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Look first."}], "content": null, "encrypted_content": "gAAAAB-opaque"},
            {"type": "function_call", "name": "shell_command", "arguments": "{\"command\":\"cat a.txt\"}", "call_id": "call_1"},
            {"type": "function_call_output", "call_id": "call_1", "output": "helo world"},
            {"type": "custom_tool_call", "status": "completed", "call_id": "call_2", "name": "apply_patch",
             "input": "*** Begin Patch\n*** Update File: a.txt\n-helo world\n+hello world\n*** End Patch"},
            {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Success. Updated a.txt"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Fixed."}], "phase": "final_answer"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks, check it again"}]}
        ],
        "tools": [
            {"type": "function", "name": "shell_command", "description": "Runs a shell command", "strict": false,
             "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"], "additionalProperties": false}},
            {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}},
            {"type": "namespace", "name": "mcp__docs", "description": "Docs server",
             "tools": [{"type": "function", "name": "search", "description": "Search docs", "strict": false,
                        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]},
            {"type": "web_search", "external_web_access": false},
            {"type": "image_generation", "output_format": "png"}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "019a-thread-id",
        "text": {"verbosity": "low"},
        "client_metadata": {"x-codex-installation-id": "abc"}
    })
}

#[tokio::test]
async fn codex_request_shapes_are_accepted_and_translated() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    let response = post(&gateway, "/v1/responses", &codex_request()).await;
    assert_eq!(response.status(), 200);
    let events = response_events(response).await;
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    assert_eq!(text_deltas(&events), ANSWER);
    let sent = &a.requests("model-a")[0].body;
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "system",
            "system",
            "user",
            "assistant",
            "tool",
            "assistant",
            "tool",
            "assistant",
            "user"
        ]
    );
    let messages = &sent["messages"];
    assert_eq!(
        messages[3]["tool_calls"][0]["function"]["name"],
        "shell_command"
    );
    assert_eq!(messages[4]["tool_call_id"], "call_1");
    assert_eq!(
        messages[5]["tool_calls"][0]["function"]["name"],
        "apply_patch"
    );
    let patch: Value = serde_json::from_str(
        messages[5]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        patch["input"]
            .as_str()
            .unwrap()
            .starts_with("*** Begin Patch")
    );
    assert_eq!(messages[6]["tool_call_id"], "call_2");
    let tools: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["shell_command", "apply_patch", "search"]);
    assert_eq!(sent["parallel_tool_calls"], false);
    for dropped in [
        "include",
        "prompt_cache_key",
        "store",
        "text",
        "client_metadata",
        "reasoning",
        "input",
        "instructions",
    ] {
        assert!(
            sent.get(dropped).is_none(),
            "{dropped} must not reach the upstream"
        );
    }
    assert!(
        sent.get("reasoning_effort").is_none(),
        "a route not tagged reasoning is not sent reasoning_effort"
    );
}

#[tokio::test]
async fn reasoning_effort_reaches_only_routes_tagged_reasoning() {
    let sim = Simulator::start().await;
    sim.model("thinker").answer(ANSWER);
    sim.model("plain").answer(ANSWER);
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route_with(
            "p",
            "thinker",
            1,
            "context_window = 100000\ntags = [\"reasoning\"]",
        )
        .route("p", "plain", 2)
        .start()
        .await;
    let body = json!({"input": "think", "reasoning": {"effort": "minimal"}});
    let first = post(&gateway, "/v1/responses", &body).await;
    assert_eq!(header(&first, "x-gateway-route"), "p/thinker");
    assert_eq!(sim.requests("thinker")[0].body["reasoning_effort"], "low");
    let strict = gateway
        .http
        .post(gateway.url("/v1/responses"))
        .header("x-freerouter-strict", "true")
        .json(&json!({"model": "p/plain", "input": "think", "reasoning": {"effort": "high"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), 200);
    assert!(
        sim.requests("plain")[0]
            .body
            .get("reasoning_effort")
            .is_none()
    );
}

#[tokio::test]
async fn a_custom_tool_call_comes_back_as_a_custom_tool_call_item() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    let patch = "*** Begin Patch\n*** Add File: b.txt\n+hi\n*** End Patch";
    let arguments = json!({ "input": patch }).to_string();
    a.model("model-a")
        .then(Behavior::ToolCall {
            name: "apply_patch".into(),
            arguments: arguments.clone(),
        })
        .then(Behavior::ToolCall {
            name: "apply_patch".into(),
            arguments,
        });
    let mut request = codex_request();
    let streamed = post(&gateway, "/v1/responses", &request).await;
    let events = response_events(streamed).await;
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["item"]["type"], "custom_tool_call");
    assert_eq!(done[0]["item"]["name"], "apply_patch");
    assert_eq!(done[0]["item"]["input"], patch);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "response.custom_tool_call_input.done" && e["input"] == patch)
    );
    request["stream"] = json!(false);
    let whole: Value = post(&gateway, "/v1/responses", &request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["output"][0]["type"], "custom_tool_call");
    assert_eq!(whole["output"][0]["input"], patch);
    assert!(
        whole["output"][0]["call_id"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );
}

#[tokio::test]
async fn text_format_json_schema_is_served_only_by_json_routes() {
    let sim = Simulator::start().await;
    sim.model("prose").answer(ANSWER);
    sim.model("structured").answer("{\"name\":\"Rex\"}");
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route("p", "prose", 1)
        .route_with(
            "p",
            "structured",
            2,
            "context_window = 100000\ntags = [\"json\"]",
        )
        .start()
        .await;
    let response = post(
        &gateway,
        "/v1/responses",
        &json!({"input": "a dog", "text": {"format": {"type": "json_schema", "name": "pet", "strict": true,
                 "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}}),
    )
    .await;
    assert_eq!(header(&response, "x-gateway-route"), "p/structured");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["output_text"], "{\"name\":\"Rex\"}");
    assert_eq!(
        body["text"]["format"]["name"], "pet",
        "the request's text settings echoed"
    );
    let sent = &sim.requests("structured")[0].body;
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["name"], "pet");
    assert_eq!(sim.calls("prose"), 0);
}

#[tokio::test]
async fn legacy_completions_answer_in_the_text_completion_shape() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    let response = post(
        &gateway,
        "/v1/completions",
        &json!({"model": "auto", "prompt": "def add(a, b):", "max_tokens": 32, "stop": ["\n\n"]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "text_completion");
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(body["choices"][0]["text"], ANSWER);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["choices"][0]["logprobs"], Value::Null);
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let sent = &a.requests("model-a")[0].body;
    assert_eq!(sent["messages"][1]["content"], "def add(a, b):");
    assert_eq!(sent["max_tokens"], 32);
    assert_eq!(sent["stop"], json!(["\n\n"]));

    let stream = post(
        &gateway,
        "/v1/completions",
        &json!({"prompt": ["Once"], "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(header(&stream, "content-type"), "text/event-stream");
    let data = freerouter_tests::harness::sse_data(stream).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, ANSWER);
    assert!(
        chunks
            .iter()
            .any(|c| c["usage"]["total_tokens"].as_u64().is_some())
    );

    let several = post(&gateway, "/v1/completions", &json!({"prompt": ["a", "b"]})).await;
    assert_eq!(several.status(), 400);
    let body: Value = several.json().await.unwrap();
    assert_eq!(body["error"]["param"], "prompt");
}

#[tokio::test]
async fn a_429_at_rank_one_falls_back_to_rank_two_on_legacy_completions() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a")
        .always(Behavior::rate_limited(Some("60")));
    let response = post(&gateway, "/v1/completions", &json!({"prompt": "Once upon"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pb/model-b:ok"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], ANSWER);
    assert_eq!(b.calls("model-b"), 1);
}

#[tokio::test]
async fn a_cut_legacy_completion_stream_is_rescued_too() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::CutAfter { chunks: 4 });
    let stream = post(
        &gateway,
        "/v1/completions",
        &json!({"prompt": "The quick", "stream": true}),
    )
    .await;
    let data = freerouter_tests::harness::sse_data(stream).await;
    let text: String = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, ANSWER);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(b.calls("model-b"), 1);
}
