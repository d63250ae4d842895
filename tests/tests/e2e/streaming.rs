//! Streaming: invisible fallback before the commit point, rescue after it, tolerant SSE reading.

use freerouter_tests::harness::{
    GatewayConfig, TestGateway, ask_stream, header, sse_data, streamed_text,
};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};

const ANSWER: &str = "The quick brown fox jumps over the lazy dog and keeps running far away.";

/// Two simulated providers serving the same canonical answer, ranked a then b.
async fn two_routes(
    configure: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> (Simulator, Simulator, TestGateway) {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").answer(ANSWER);
    b.model("model-b").answer(ANSWER);
    let config = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2);
    let gateway = configure(config).start().await;
    (a, b, gateway)
}

fn ends_with_done(events: &[String]) -> bool {
    events.last().map(String::as_str) == Some("[DONE]")
}

fn has_error_event(events: &[String]) -> bool {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .any(|v| v.get("error").is_some())
}

#[tokio::test]
async fn a_stream_carries_the_gateway_headers_and_the_upstream_model() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    a.model("model-a").response_model("model-a-2025-06");
    let response = gateway.chat(&ask_stream("auto", "tell me")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    assert_eq!(header(&response, "x-gateway-model"), "model-a-2025-06");
    assert_eq!(header(&response, "x-gateway-trail"), "pa/model-a:ok");
    assert!(header(&response, "x-request-id").starts_with("req_"));
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), ANSWER);
    assert!(ends_with_done(&events));
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["model"], "model-a-2025-06");
}

#[tokio::test]
async fn a_failure_before_the_commit_point_is_replaced_invisibly() {
    let (a, b, gateway) = two_routes(|c| c).await;
    // Role chunk only, then the connection dies: no content reached the client yet.
    a.model("model-a")
        .then(Behavior::CutAfter { chunks: 0 })
        .then(Behavior::CutAfter { chunks: 0 });
    let response = gateway.chat(&ask_stream("auto", "tell me")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    let events = sse_data(response).await;
    assert_eq!(
        streamed_text(&events),
        ANSWER,
        "exactly one answer, nothing doubled"
    );
    assert!(ends_with_done(&events));
    assert!(!has_error_event(&events));
    assert_eq!(b.calls("model-b"), 1);
}

#[tokio::test]
async fn a_stream_cut_after_content_is_completed_from_another_route() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::CutAfter { chunks: 4 });
    let response = gateway.chat(&ask_stream("auto", "tell me")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let events = sse_data(response).await;
    assert_eq!(
        streamed_text(&events),
        ANSWER,
        "the client receives the complete answer"
    );
    assert!(ends_with_done(&events));
    assert!(!has_error_event(&events));
    // Continued with the partial answer as an assistant prefill.
    let rescue = &b.requests("model-b")[0].body;
    let last = rescue["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "assistant");
    assert!(ANSWER.starts_with(last["content"].as_str().unwrap()));
}

#[tokio::test]
async fn a_stalled_stream_is_completed_by_restarting_where_prefill_is_refused() {
    let (a, b, gateway) = two_routes(|c| c.set("routing.stream_idle_timeout_ms", "400")).await;
    a.model("model-a").then(Behavior::StallAfter { chunks: 3 });
    b.model("model-b").refuse_prefill(true);
    let started = std::time::Instant::now();
    let response = gateway.chat(&ask_stream("auto", "tell me")).await;
    let events = sse_data(response).await;
    assert_eq!(
        streamed_text(&events),
        ANSWER,
        "only the extension of the restarted answer is forwarded"
    );
    assert!(ends_with_done(&events));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(b.calls("model-b"), 2, "a refused prefill, then a restart");
}

#[tokio::test]
async fn a_cut_stream_that_no_route_can_continue_ends_with_an_error_event() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::CutAfter { chunks: 3 });
    // The other route neither accepts a prefill nor gives the same answer.
    b.model("model-b")
        .refuse_prefill(true)
        .answer("Something else entirely, said differently.");
    let response = gateway.chat(&ask_stream("auto", "tell me")).await;
    let events = sse_data(response).await;
    assert!(
        has_error_event(&events),
        "the truncation is reported: {events:?}"
    );
    assert!(!ends_with_done(&events), "never closed as if complete");
    let text = streamed_text(&events);
    assert!(
        ANSWER.starts_with(&text) && text.len() < ANSWER.len(),
        "no text glued from another answer: {text:?}"
    );
}

#[tokio::test]
async fn a_stream_without_done_ends_promptly() {
    let (a, _b, gateway) = two_routes(|c| c.set("routing.stream_idle_timeout_ms", "5000")).await;
    a.model("model-a").then(Behavior::NoDone);
    let started = std::time::Instant::now();
    let response = gateway.chat(&ask_stream("auto", "tell me")).await;
    let events = sse_data(response).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(streamed_text(&events), ANSWER);
    assert!(ends_with_done(&events), "the gateway's own [DONE]");
}

#[tokio::test]
async fn a_broken_sse_event_is_skipped() {
    let (a, b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::BrokenSseEvent);
    let response = gateway.chat(&ask_stream("auto", "tell me")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), ANSWER);
    assert!(
        events
            .iter()
            .all(|e| e == "[DONE]" || serde_json::from_str::<Value>(e).is_ok())
    );
    assert_eq!(b.calls("model-b"), 0);
}

#[tokio::test]
async fn usage_is_forwarded_when_include_usage_is_set() {
    let (_a, _b, gateway) = two_routes(|c| c).await;
    let mut body = ask_stream("auto", "tell me");
    body["stream_options"] = json!({"include_usage": true});
    let events = sse_data(gateway.chat(&body).await).await;
    let usage = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .find(|v| v.get("usage").is_some_and(|u| !u.is_null()))
        .expect("a usage chunk");
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(ends_with_done(&events));
}

#[tokio::test]
async fn a_tool_call_stream_passes_through() {
    let (a, _b, gateway) = two_routes(|c| c).await;
    a.model("model-a").then(Behavior::ToolCall {
        name: "get_weather".into(),
        arguments: "{\"city\":\"Paris\"}".into(),
    });
    let events = sse_data(gateway.chat(&ask_stream("auto", "weather?")).await).await;
    let arguments: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    assert_eq!(arguments, "{\"city\":\"Paris\"}");
    assert!(ends_with_done(&events));
}
