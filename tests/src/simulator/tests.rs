//! The simulator over real HTTP, as the gateway sees it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::{Value, json};

use super::{Behavior, KeyLimits, Simulator};

fn client() -> reqwest::Client {
    // Plain http only, but reqwest (rustls-no-provider) needs a provider to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn chat(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Say hello, please."}],
    })
}

async fn post(sim: &Simulator, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", sim.base_url()))
        .json(body)
        .send()
        .await
        .expect("the simulator answers")
}

/// The `data:` payloads of a stream, and the error that ended it early, if any.
async fn events(response: reqwest::Response) -> (Vec<String>, Option<reqwest::Error>) {
    let mut raw = Vec::new();
    let mut failure = None;
    let mut body = response.bytes_stream();
    while let Some(part) = body.next().await {
        match part {
            Ok(bytes) => raw.extend_from_slice(&bytes),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let payloads = text
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_string)
        .collect();
    (payloads, failure)
}

fn content_of(payloads: &[String]) -> String {
    payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn a_non_streaming_request_gets_the_canonical_answer_with_usage() {
    let sim = Simulator::start().await;
    sim.model("sim-a").response_model("sim-a-2025");
    let response = post(&sim, &chat("sim-a", false)).await;
    assert_eq!(response.status(), 200);
    assert!(
        !response
            .headers()
            .keys()
            .any(|name| name.as_str().starts_with("x-ratelimit")),
        "no limits, no rate-limit headers"
    );
    let body: Value = response.json().await.expect("json");
    let text = "Hello from sim-a. This is a simulated answer from the upstream.";
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "sim-a-2025");
    assert_eq!(body["choices"][0]["message"]["content"], text);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // "Say hello, please." is 18 characters: 4 prompt tokens; the answer has 11 words.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 11, "total_tokens": 15})
    );
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-sim-"))
    );
    assert_eq!(sim.calls("sim-a"), 1);
    assert_eq!(sim.total_calls(), 1);
    assert_eq!(sim.served(), 1);
}

#[tokio::test]
async fn a_stream_concatenates_to_the_canonical_text_and_ends_with_done() {
    let sim = Simulator::start().await;
    sim.model("sim-a").answer("Streams  arrive\nword by word.");
    let response = post(&sim, &chat("sim-a", true)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (payloads, failure) = events(response).await;
    assert!(failure.is_none());
    assert_eq!(content_of(&payloads), "Streams  arrive\nword by word.");
    let role: Value = serde_json::from_str(&payloads[0]).expect("role chunk");
    assert_eq!(
        role["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let n = payloads.len();
    let finish: Value = serde_json::from_str(&payloads[n - 3]).expect("finish chunk");
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage: Value = serde_json::from_str(&payloads[n - 2]).expect("usage chunk");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    assert_eq!(payloads[n - 1], "[DONE]");
}

#[tokio::test]
async fn stream_headers_arrive_before_the_first_token_delay() {
    let sim = Simulator::start().await;
    sim.model("slow").first_token_delay_ms(1_000);
    let started = Instant::now();
    let response = post(&sim, &chat("slow", true)).await;
    assert!(started.elapsed() < Duration::from_millis(800));
    let (payloads, _) = events(response).await;
    assert!(started.elapsed() >= Duration::from_millis(1_000));
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn a_scripted_429_with_retry_after_is_followed_by_a_normal_answer() {
    let sim = Simulator::start().await;
    sim.model("sim-a").then(Behavior::rate_limited(Some("2")));
    let limited = post(&sim, &chat("sim-a", false)).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");
    let error: Value = limited.json().await.expect("json error");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    let ok = post(&sim, &chat("sim-a", false)).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(sim.calls("sim-a"), 2);
}

#[tokio::test]
async fn a_cut_stream_ends_in_an_error_without_done() {
    let sim = Simulator::start().await;
    sim.model("sim-a").always(Behavior::CutAfter { chunks: 2 });
    let (payloads, failure) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert!(
        failure.is_some(),
        "the body must end with an error, not a clean EOF"
    );
    assert_eq!(content_of(&payloads), "Hello from");
    assert!(
        !payloads
            .iter()
            .any(|p| p == "[DONE]" || p.contains("finish_reason\":\"stop"))
    );
}

#[tokio::test]
async fn a_cut_non_streaming_body_fails_mid_way() {
    let sim = Simulator::start().await;
    sim.model("sim-a").then(Behavior::CutAfter { chunks: 0 });
    let response = post(&sim, &chat("sim-a", false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn a_stalled_stream_sends_nothing_more_until_the_simulator_is_dropped() {
    let sim = Simulator::start().await;
    sim.model("sim-a").then(Behavior::StallAfter { chunks: 1 });
    let mut body = post(&sim, &chat("sim-a", true)).await.bytes_stream();
    let mut received = String::new();
    while !received.contains("Hello") {
        let part = body.next().await.expect("more").expect("bytes");
        received.push_str(&String::from_utf8_lossy(&part));
    }
    let idle = tokio::time::timeout(Duration::from_millis(200), body.next()).await;
    assert!(idle.is_err(), "a stalled stream sends nothing");
    drop(sim);
    let after = tokio::time::timeout(Duration::from_secs(5), body.next()).await;
    assert!(
        matches!(after, Ok(Some(Err(_)))),
        "dropping the simulator ends the stall with an error"
    );
}

#[tokio::test]
async fn a_no_done_stream_finishes_but_never_says_done() {
    let sim = Simulator::start().await;
    sim.model("sim-a").then(Behavior::NoDone);
    let mut body = post(&sim, &chat("sim-a", true)).await.bytes_stream();
    let mut received = String::new();
    while !received.contains("\"usage\"") {
        let part = body.next().await.expect("more").expect("bytes");
        received.push_str(&String::from_utf8_lossy(&part));
    }
    let idle = tokio::time::timeout(Duration::from_millis(200), body.next()).await;
    assert!(idle.is_err(), "the connection stays open");
    assert!(!received.contains("[DONE]"));
}

#[tokio::test]
async fn a_hanging_model_never_sends_headers() {
    let sim = Simulator::start().await;
    sim.model("sim-a").then(Behavior::HangBeforeHeaders);
    let send = client()
        .post(format!("{}/chat/completions", sim.base_url()))
        .json(&chat("sim-a", false))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(send.is_err_and(|e| e.is_timeout()));
    assert_eq!(sim.calls("sim-a"), 1);
}

#[tokio::test]
async fn malformed_answers_do_not_parse() {
    let sim = Simulator::start().await;
    sim.model("sim-a").always(Behavior::MalformedJson);
    let response = post(&sim, &chat("sim-a", false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.is_err());
    let (payloads, failure) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert!(failure.is_none());
    assert!(!payloads.is_empty());
    assert!(
        payloads
            .iter()
            .all(|p| serde_json::from_str::<Value>(p).is_err())
    );
}

#[tokio::test]
async fn a_broken_event_sits_inside_an_otherwise_complete_stream() {
    let sim = Simulator::start().await;
    sim.model("sim-a")
        .answer("one two")
        .then(Behavior::BrokenSseEvent);
    let (payloads, _) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert_eq!(payloads[2], "{\"choices\": [");
    assert_eq!(content_of(&payloads), "one two");
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn an_empty_completion_streams_no_content() {
    let sim = Simulator::start().await;
    sim.model("sim-a").always(Behavior::EmptyCompletion);
    let body: Value = post(&sim, &chat("sim-a", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "");
    let (payloads, _) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert_eq!(content_of(&payloads), "");
    assert_eq!(payloads.len(), 4, "role, finish, usage, [DONE]");
}

#[tokio::test]
async fn a_tool_call_answer_finishes_with_tool_calls() {
    let sim = Simulator::start().await;
    sim.model("sim-a").always(Behavior::ToolCall {
        name: "web_search".into(),
        arguments: r#"{"query":"rust"}"#.into(),
    });
    let body: Value = post(&sim, &chat("sim-a", false))
        .await
        .json()
        .await
        .expect("json");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "web_search");
    assert_eq!(call["function"]["arguments"], r#"{"query":"rust"}"#);
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn a_prefill_is_continued_where_it_left_off() {
    let sim = Simulator::start().await;
    sim.model("sim-a").answer("The answer is forty-two.");
    let mut request = chat("sim-a", true);
    request["messages"] = json!([
        {"role": "user", "content": "What is the answer?"},
        {"role": "assistant", "content": "The answer"},
    ]);
    let (payloads, _) = events(post(&sim, &request).await).await;
    assert_eq!(content_of(&payloads), " is forty-two.");
    request["messages"][1]["content"] = json!("Something else");
    request["stream"] = json!(false);
    let body: Value = post(&sim, &request).await.json().await.expect("json");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The answer is forty-two."
    );
}

#[tokio::test]
async fn a_model_that_refuses_prefill_answers_400() {
    let sim = Simulator::start().await;
    sim.model("sim-a").refuse_prefill(true);
    let mut request = chat("sim-a", true);
    request["messages"] = json!([
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hel"},
    ]);
    let response = post(&sim, &request).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "prefill_not_supported");
    assert_eq!(
        error["error"]["message"],
        "assistant prefill is not supported by this model"
    );
    assert_eq!(post(&sim, &chat("sim-a", true)).await.status(), 200);
}

#[tokio::test]
async fn a_prompt_over_the_context_window_is_refused() {
    let sim = Simulator::start().await;
    sim.model("small").context_window(10);
    let mut request = chat("small", false);
    request["max_tokens"] = json!(7);
    let response = post(&sim, &request).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "context_length_exceeded");
    request["max_tokens"] = json!(6);
    assert_eq!(post(&sim, &request).await.status(), 200);
}

#[tokio::test]
async fn unknown_models_and_invalid_bodies_are_refused_but_counted() {
    let sim = Simulator::start().await;
    let missing = post(&sim, &chat("nope", false)).await;
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.expect("json");
    assert_eq!(
        error,
        json!({"error": {"message": "The model `nope` does not exist",
            "type": "invalid_request_error", "code": "model_not_found", "param": null}})
    );
    let invalid = client()
        .post(format!("{}/chat/completions", sim.base_url()))
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(invalid.status(), 400);
    assert_eq!(sim.calls("nope"), 0);
    assert_eq!(sim.total_calls(), 2);
}

#[tokio::test]
async fn requests_are_recorded_with_their_headers_in_order() {
    let sim = Simulator::start().await;
    sim.model("sim-a");
    for n in 0..2 {
        client()
            .post(format!("{}/chat/completions", sim.base_url()))
            .header("authorization", "Bearer sk-test")
            .json(&json!({"model": "sim-a", "messages": [{"role": "user", "content": n.to_string()}]}))
            .send()
            .await
            .expect("answer");
    }
    let recorded = sim.requests("sim-a");
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[1].body["messages"][0]["content"], "1");
    assert!(recorded[0].at <= recorded[1].at);
    assert!(
        recorded[0]
            .headers
            .contains(&("authorization".to_string(), "Bearer sk-test".to_string()))
    );
    assert!(sim.requests("unknown").is_empty());
}

#[tokio::test]
async fn the_model_list_follows_creation_unlisting_and_extra_entries() {
    let sim = Simulator::start().await;
    sim.model("sim-a");
    sim.model("sim-b");
    sim.model("sim-c");
    sim.unlist("sim-b");
    sim.list_extra(json!({"id": "x:free", "pricing": {"prompt": "0", "completion": "0"}}));
    let list: Value = client()
        .get(format!("{}/models", sim.base_url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["sim-a", "sim-c", "x:free"]);
    assert_eq!(list["data"][0]["owned_by"], "simulator");
    assert_eq!(
        post(&sim, &chat("sim-b", false)).await.status(),
        200,
        "unlisted models still answer"
    );
}

async fn post_as(sim: &Simulator, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = client().post(format!("{}/chat/completions", sim.base_url()));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request
        .json(body)
        .send()
        .await
        .expect("the simulator answers")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Waits for the next minute when the current one ends within 5 s, so a test's requests share a
/// minute window.
async fn clear_of_a_minute_boundary() {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after the epoch")
        .as_millis() as u64;
    let left = 60_000 - now_ms % 60_000;
    if left < 5_000 {
        tokio::time::sleep(Duration::from_millis(left + 50)).await;
    }
}

fn rpm(n: u64) -> KeyLimits {
    KeyLimits {
        rpm: Some(n),
        ..KeyLimits::default()
    }
}

#[tokio::test]
async fn a_key_over_its_rpm_gets_a_429_with_retry_after_and_rate_limit_headers() {
    let sim = Simulator::start().await;
    sim.model("sim-a").then(Behavior::rate_limited(Some("1")));
    sim.limit_key("sk-a", rpm(2));
    clear_of_a_minute_boundary().await;
    let scripted = post_as(&sim, Some("sk-a"), &chat("sim-a", false)).await;
    assert_eq!(scripted.status(), 429, "a scripted 429 is admitted first");
    let second = post_as(&sim, Some("sk-a"), &chat("sim-a", false)).await;
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-ratelimit-remaining-requests"), Some("0"));
    let refused = post_as(&sim, Some("sk-a"), &chat("sim-a", false)).await;
    assert_eq!(refused.status(), 429, "the scripted 429 counted too");
    assert_eq!(
        header(&refused, "x-ratelimit-remaining-requests"),
        Some("0")
    );
    assert!(header(&refused, "x-ratelimit-limit-tokens").is_none());
    let retry_after: u64 = header(&refused, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("whole seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "x-ratelimit-limit-requests"), Some("2"));
    assert!(
        header(&refused, "x-ratelimit-reset-requests").is_some_and(|v| v.ends_with('s')),
        "a Go-style duration"
    );
    let error: Value = refused.json().await.expect("json");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    let message = error["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("Rate limit reached for requests per minute (RPM): Limit 2, Used 2"),
        "{message}"
    );
    assert_eq!(
        sim.limit_refusals(),
        1,
        "scripted 429s are not limit refusals"
    );
    let unlimited = post_as(&sim, Some("sk-b"), &chat("sim-a", false)).await;
    assert_eq!(unlimited.status(), 200);
    assert!(header(&unlimited, "x-ratelimit-limit-requests").is_none());
    assert_eq!(
        post_as(&sim, None, &chat("sim-a", false)).await.status(),
        200
    );
    assert_eq!(sim.served(), 3);
    assert_eq!(sim.total_calls(), 5);
    assert_eq!(sim.calls("sim-a"), 5);
}

#[tokio::test]
async fn a_model_limit_applies_to_each_key_separately() {
    let sim = Simulator::start().await;
    sim.model("sim-a").limit(rpm(1));
    sim.model("sim-b");
    clear_of_a_minute_boundary().await;
    let statuses = [
        (Some("sk-a"), "sim-a", 200),
        (Some("sk-a"), "sim-a", 429),
        (Some("sk-b"), "sim-a", 200),
        (Some("sk-a"), "sim-b", 200),
        (None, "sim-a", 200),
        (None, "sim-a", 429),
    ];
    for (key, model, status) in statuses {
        let response = post_as(&sim, key, &chat(model, false)).await;
        assert_eq!(response.status(), status, "{key:?} on {model}");
    }
    assert_eq!(sim.limit_refusals(), 2);
    assert_eq!(sim.served(), 4);
}

#[tokio::test]
async fn tpm_counts_the_prompt_and_completion_tokens_the_usage_reports() {
    let sim = Simulator::start().await;
    sim.model("sim-a");
    // Each request: 4 prompt tokens, 11 completion tokens.
    sim.limit_key(
        "sk-a",
        KeyLimits {
            tpm: Some(18),
            ..KeyLimits::default()
        },
    );
    clear_of_a_minute_boundary().await;
    let first = post_as(&sim, Some("sk-a"), &chat("sim-a", true)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), Some("18"));
    assert_eq!(header(&first, "x-ratelimit-remaining-tokens"), Some("3"));
    assert!(header(&first, "x-ratelimit-limit-requests").is_none());
    let (payloads, _) = events(first).await;
    let usage: Value = serde_json::from_str(&payloads[payloads.len() - 2]).expect("usage");
    assert_eq!(usage["usage"]["total_tokens"], 15);
    let second = post_as(&sim, Some("sk-a"), &chat("sim-a", false)).await;
    assert_eq!(second.status(), 429, "15 + 4 > 18");
    let error: Value = second.json().await.expect("json");
    let message = error["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("Rate limit reached for tokens per minute (TPM): Limit 18, Used 15"),
        "{message}"
    );
    assert_eq!(error["error"]["type"], "tokens");
}

#[tokio::test]
async fn successful_answers_show_the_remaining_requests_and_tokens() {
    let sim = Simulator::start().await;
    sim.model("sim-a");
    sim.limit_key(
        "sk-a",
        KeyLimits {
            rpm: Some(30),
            rpd: Some(1_000),
            tpm: Some(6_000),
            tpd: None,
        },
    );
    clear_of_a_minute_boundary().await;
    for remaining in [("29", "5985"), ("28", "5970")] {
        let response = post_as(&sim, Some("sk-a"), &chat("sim-a", false)).await;
        assert_eq!(header(&response, "x-ratelimit-limit-requests"), Some("30"));
        assert_eq!(
            header(&response, "x-ratelimit-remaining-requests"),
            Some(remaining.0)
        );
        assert_eq!(header(&response, "x-ratelimit-limit-tokens"), Some("6000"));
        assert_eq!(
            header(&response, "x-ratelimit-remaining-tokens"),
            Some(remaining.1)
        );
        assert!(header(&response, "x-ratelimit-reset-tokens").is_some());
    }
}

#[tokio::test]
async fn concurrent_requests_never_exceed_the_limit() {
    let sim = Simulator::start().await;
    sim.model("sim-a").latency_ms(20);
    sim.limit_key("sk-a", rpm(50));
    sim.set_recording(false);
    clear_of_a_minute_boundary().await;
    let requests = (0..120).map(|_| {
        let sim = &sim;
        async move {
            post_as(sim, Some("sk-a"), &chat("sim-a", false))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(requests).await;
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 200).count(), 50);
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 429).count(), 70);
    assert_eq!(sim.served(), 50);
    assert_eq!(sim.limit_refusals(), 70);
}

#[tokio::test]
async fn any_provider_path_is_served_and_recorded() {
    let sim = Simulator::start().await;
    sim.model("models/gemini-2.5-flash");
    let prefixes = [
        "/openai/v1",
        "/v1beta/openai",
        "/compatibility/v1",
        "/client/v4/accounts/ACC/ai/v1",
        "/api/paas/v4",
        "/inference",
    ];
    for prefix in prefixes {
        let response = client()
            .post(format!("{}/chat/completions", sim.url(prefix)))
            .json(&chat("models/gemini-2.5-flash", false))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{prefix}");
    }
    let paths: Vec<String> = sim
        .requests("models/gemini-2.5-flash")
        .into_iter()
        .map(|r| r.path)
        .collect();
    let expected: Vec<String> = prefixes
        .iter()
        .map(|p| format!("{p}/chat/completions"))
        .collect();
    assert_eq!(paths, expected);
    let list: Value = client()
        .get(format!("{}/models", sim.url("/v1beta/openai")))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"][0]["id"], "models/gemini-2.5-flash");
    let unknown = client()
        .post(format!("{}/audio/speech", sim.base_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status(), 404);
    let wrong_method = client()
        .get(format!("{}/chat/completions", sim.base_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong_method.status(), 405);
}

#[tokio::test]
async fn a_huge_body_arrives_whole_as_valid_json() {
    let sim = Simulator::start().await;
    sim.model("sim-a")
        .always(Behavior::HugeBody { bytes: 3 << 20 });
    let body = post(&sim, &chat("sim-a", false)).await.bytes().await;
    let body: Value = serde_json::from_slice(&body.expect("the body")).expect("JSON");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content.len(), 3 << 20);
}

#[tokio::test]
async fn a_huge_stream_is_many_events_and_a_huge_event_is_one() {
    let sim = Simulator::start().await;
    sim.model("sim-a")
        .then(Behavior::HugeBody { bytes: 1 << 20 });
    sim.model("sim-a")
        .then(Behavior::HugeEvent { bytes: 1 << 20 });
    let (many, failure) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert!(failure.is_none());
    assert_eq!(content_of(&many).len(), 1 << 20);
    assert!(many.len() > 16, "{} events", many.len());
    let (one, _) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert_eq!(one.len(), 4, "role, the huge event, finish, [DONE]");
    assert_eq!(content_of(&one).len(), 1 << 20);
}

#[tokio::test]
async fn a_slow_drip_delivers_the_whole_answer_in_small_late_pieces() {
    let sim = Simulator::start().await;
    sim.model("sim-a").always(Behavior::SlowDrip {
        piece_bytes: 64,
        interval_ms: 5,
    });
    let started = Instant::now();
    let (payloads, failure) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert!(failure.is_none());
    assert_eq!(
        content_of(&payloads),
        "Hello from sim-a. This is a simulated answer from the upstream."
    );
    assert!(started.elapsed() >= Duration::from_millis(5 * 10));
    let whole = post(&sim, &chat("sim-a", false)).await;
    let body: Value = whole.json().await.expect("JSON once all pieces are in");
    assert_eq!(body["object"], "chat.completion");
}

#[tokio::test]
async fn invalid_utf8_and_oversized_headers_reach_the_wire() {
    let sim = Simulator::start().await;
    sim.model("sim-a")
        .then(Behavior::InvalidUtf8)
        .then(Behavior::OversizedHeaders { bytes: 8_000 });
    let corrupt = post(&sim, &chat("sim-a", false)).await.bytes().await;
    let corrupt = corrupt.expect("the body");
    assert!(std::str::from_utf8(&corrupt).is_err());
    assert!(corrupt.windows(2).any(|w| w == b".\xff"));
    let padded = post(&sim, &chat("sim-a", false)).await;
    assert_eq!(padded.headers()["x-sim-padding"].len(), 8_000);
    assert_eq!(padded.status(), 200);
}

#[tokio::test]
async fn a_flood_of_tiny_events_carries_the_flood_text() {
    let sim = Simulator::start().await;
    sim.model("sim-a")
        .always(Behavior::TinyEventFlood { events: 500 });
    let (payloads, failure) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert!(failure.is_none());
    assert_eq!(content_of(&payloads), super::flood_text(500));
    sim.model("sim-a")
        .always(Behavior::EmptyEventFlood { events: 300 });
    let (payloads, _) = events(post(&sim, &chat("sim-a", true)).await).await;
    assert!(payloads.len() > 300);
    assert_eq!(
        content_of(&payloads),
        "Hello from sim-a. This is a simulated answer from the upstream."
    );
}
