//! Upstreams that misbehave on the wire: answers that drip, never come, break off, are far larger
//! than the bound, are not UTF-8, carry huge headers or flood the gateway with tiny events. The
//! gateway stays up, bounded in memory and time, and answers the client correctly: another route,
//! or a clear OpenAI-shaped error.

use freerouter_tests::harness::{
    GatewayConfig, TestGateway, ask, ask_stream, header, sse_data, streamed_text,
};
use freerouter_tests::simulator::{Behavior, Simulator, flood_text};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The gateway's real `main.rs`, built by this package as `gateway-under-test`.
const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");

const ANSWER_A: &str = "The first route answers this.";
const ANSWER_B: &str = "The second route answers that.";

/// Two routes, `pa/model-a` ranked before `pb/model-b`, each on its own simulator.
struct Two {
    a: Simulator,
    b: Simulator,
    gateway: TestGateway,
}

async fn two_routes(tweak: impl FnOnce(GatewayConfig) -> GatewayConfig) -> Two {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").answer(ANSWER_A);
    b.model("model-b").answer(ANSWER_B);
    let config = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2);
    let gateway = tweak(config).start().await;
    Two { a, b, gateway }
}

/// The answer text of a non-streaming 200.
async fn content(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("a JSON body");
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("an answer with text content: {body}"))
        .to_string()
}

/// Asserts an OpenAI-shaped error with this status and code.
async fn assert_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
}

#[tokio::test]
async fn a_slow_drip_stream_is_forwarded_and_finishes() {
    let two = two_routes(|c| c).await;
    two.a.model("model-a").always(Behavior::SlowDrip {
        piece_bytes: 16,
        interval_ms: 15,
    });
    let response = two.gateway.chat(&ask_stream("auto", "drip")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), ANSWER_A);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(two.b.calls("model-b"), 0);
}

#[tokio::test]
async fn a_trickling_answer_is_given_up_at_the_deadline_not_when_it_ends() {
    // Every piece comes within the idle timeout (1.5 s); the whole body would take ~40 s.
    let two = two_routes(|c| c.set("routing.deadline_ms", "2000")).await;
    two.a.model("model-a").always(Behavior::SlowDrip {
        piece_bytes: 8,
        interval_ms: 800,
    });
    let started = Instant::now();
    let response = two.gateway.chat(&ask("auto", "drip")).await;
    let took = started.elapsed();
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:stream_idle"
    );
    assert_error(response, 502, "all_routes_failed").await;
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn upstreams_that_never_answer_end_in_all_routes_failed_within_the_header_timeouts() {
    let two = two_routes(|c| c).await;
    two.a.model("model-a").always(Behavior::HangBeforeHeaders);
    two.b.model("model-b").always(Behavior::HangBeforeHeaders);
    let started = Instant::now();
    let response = two.gateway.chat(&ask_stream("auto", "anyone?")).await;
    let took = started.elapsed();
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:header_timeout,pb/model-b:header_timeout"
    );
    assert_error(response, 502, "all_routes_failed").await;
    // Two header timeouts of 1.5 s each, and nothing more.
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn a_stream_reset_on_every_route_ends_with_an_error_event_not_a_hang() {
    let two = two_routes(|c| c).await;
    two.a
        .model("model-a")
        .always(Behavior::CutAfter { chunks: 2 });
    two.b
        .model("model-b")
        .always(Behavior::CutAfter { chunks: 1 });
    let response = two.gateway.chat(&ask_stream("auto", "cut")).await;
    assert_eq!(response.status(), 200);
    let events = sse_data(response).await;
    let last: Value = serde_json::from_str(events.last().expect("some events")).expect("JSON");
    assert_eq!(last["error"]["code"], "stream_interrupted", "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
    assert!(
        !events
            .iter()
            .any(|e| e.contains("\"finish_reason\":\"stop\"")),
        "a truncated answer is never closed as complete"
    );
}

#[tokio::test]
async fn a_body_larger_than_the_bound_falls_back_to_the_next_route() {
    let two = two_routes(|c| c.set("routing.max_upstream_body_bytes", "1048576")).await;
    two.a
        .model("model-a")
        .always(Behavior::HugeBody { bytes: 8 << 20 });
    let response = two.gateway.chat(&ask("auto", "big")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:too_large,pb/model-b:ok"
    );
    assert_eq!(content(response).await, ANSWER_B);
}

#[tokio::test]
async fn an_event_larger_than_the_bound_falls_back_before_the_commit_point() {
    let two = two_routes(|c| c.set("routing.max_upstream_body_bytes", "1048576")).await;
    two.a
        .model("model-a")
        .always(Behavior::HugeEvent { bytes: 8 << 20 });
    let response = two.gateway.chat(&ask_stream("auto", "big")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:too_large,pb/model-b:ok"
    );
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), ANSWER_B);
}

#[tokio::test]
async fn invalid_utf8_in_a_json_answer_falls_back_and_in_a_stream_is_replaced() {
    let two = two_routes(|c| c).await;
    two.a.model("model-a").always(Behavior::InvalidUtf8);
    let response = two.gateway.chat(&ask("auto", "bytes")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:malformed,pb/model-b:ok"
    );
    assert_eq!(content(response).await, ANSWER_B);

    let response = two.gateway.chat(&ask_stream("auto", "bytes")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), format!("{ANSWER_A}\u{fffd}"));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn oversized_response_headers_fall_back_to_the_next_route() {
    let two = two_routes(|c| c).await;
    two.a
        .model("model-a")
        .always(Behavior::OversizedHeaders { bytes: 1 << 20 });
    for body in [ask("auto", "headers"), ask_stream("auto", "headers")] {
        let response = two.gateway.chat(&body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
        assert!(
            header(&response, "x-gateway-trail").starts_with("pa/model-a:reset"),
            "{}",
            header(&response, "x-gateway-trail")
        );
    }
}

#[tokio::test]
async fn a_flood_of_tiny_events_is_forwarded_in_order_without_loss() {
    let two = two_routes(|c| c).await;
    two.a
        .model("model-a")
        .always(Behavior::TinyEventFlood { events: 20_000 });
    let response = two.gateway.chat(&ask_stream("auto", "flood")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pa/model-a");
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), flood_text(20_000));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn a_flood_of_empty_chunks_before_any_content_is_bounded_and_falls_back() {
    // 20 000 chunks of ~110 bytes: far more than the 64 KiB the gateway holds before the commit point.
    let two = two_routes(|c| c.set("routing.max_upstream_body_bytes", "65536")).await;
    two.a
        .model("model-a")
        .always(Behavior::EmptyEventFlood { events: 20_000 });
    let response = two.gateway.chat(&ask_stream("auto", "flood")).await;
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:too_large,pb/model-b:ok"
    );
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), ANSWER_B);
}

#[tokio::test]
async fn an_absurd_reset_header_cools_the_key_without_breaking_the_gateway() {
    let two = two_routes(|c| c).await;
    // Hours enough to overflow a millisecond clock.
    two.a
        .model("model-a")
        .then(Behavior::rate_limited(Some("2562047500000h")));
    let response = two.gateway.chat(&ask("auto", "when?")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/model-a:429,pb/model-b:ok"
    );
    let again = two.gateway.chat(&ask("auto", "and now?")).await;
    assert_eq!(header(&again, "x-gateway-route"), "pb/model-b");
    assert_eq!(two.a.calls("model-a"), 1, "the key rests");
}

/// `VmHWM` and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Reads a stream to its end without keeping it: how many bytes came, and whether `[DONE]` closed it.
async fn drain_stream(response: reqwest::Response) -> (usize, bool) {
    use futures::StreamExt;
    let mut body = response.bytes_stream();
    let (mut bytes, mut tail) = (0, Vec::new());
    while let Some(part) = body.next().await {
        let part = part.expect("the stream reads");
        bytes += part.len();
        tail.extend_from_slice(&part);
        tail.drain(..tail.len().saturating_sub(16));
    }
    (bytes, tail.ends_with(b"data: [DONE]\n\n"))
}

#[tokio::test]
async fn a_body_larger_than_the_bound_never_enters_memory() {
    const HUGE: usize = 64 << 20;
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("huge-event")
        .always(Behavior::HugeEvent { bytes: HUGE });
    a.model("huge-body")
        .always(Behavior::HugeBody { bytes: HUGE });
    b.model("model-b").answer(ANSWER_B);
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayConfig::new()
        .set("routing.max_upstream_body_bytes", "1048576")
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "huge-event", 1)
        .route("pb", "model-b", 2)
        .route("pa", "huge-body", 3)
        .start_process(GATEWAY, dir.path())
        .await;
    let pid = gateway.pid().expect("a running gateway");
    freerouter_tests::harness::init_tls();
    let http = reqwest::Client::new();
    let url = gateway.url("/v1/chat/completions");
    let warm = http
        .post(&url)
        .json(&ask("model-b", "warm up"))
        .send()
        .await;
    assert_eq!(warm.expect("an answer").status(), 200);
    let (_, baseline_kib) = memory_kib(pid);

    // A 64 MiB JSON answer: refused at 1 MiB, served by the next route.
    let response = http.post(&url).json(&ask("huge-body", "big")).send().await;
    let response = response.expect("an answer");
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/huge-body:too_large,pa/huge-event:too_large,pb/model-b:ok"
    );
    assert_eq!(content(response).await, ANSWER_B);

    // One 64 MiB event: refused at 1 MiB, before anything reached the client.
    let response = http
        .post(&url)
        .json(&ask_stream("auto", "big"))
        .send()
        .await;
    let response = response.expect("an answer");
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/huge-event:too_large,pb/model-b:ok"
    );
    assert_eq!(streamed_text(&sse_data(response).await), ANSWER_B);

    // 32 MiB in events of 64 KiB: each within the bound, so all forwarded, none accumulated.
    a.model("huge-body")
        .always(Behavior::HugeBody { bytes: HUGE / 2 });
    let started = Instant::now();
    let response = http
        .post(&url)
        .header("x-freerouter-strict", "true")
        .json(&ask_stream("huge-body", "long"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(header(&response, "x-gateway-route"), "pa/huge-body");
    let (bytes, done) = drain_stream(response).await;
    assert!(bytes > HUGE / 2 && done, "{bytes} bytes, [DONE]: {done}");
    let streamed_in = started.elapsed();

    let (peak_kib, now_kib) = memory_kib(pid);
    eprintln!(
        "gateway RSS: {baseline_kib} KiB after warm-up, peak {peak_kib} KiB, now {now_kib} KiB; \
         32 MiB streamed through in {streamed_in:?}"
    );
    assert!(
        peak_kib < baseline_kib + 16 * 1024,
        "the peak ({peak_kib} KiB) rose more than 16 MiB above {baseline_kib} KiB for 32-64 MiB bodies"
    );
    gateway.kill().await;
}
