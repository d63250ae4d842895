//! How long a client may hold on: a queued request holds its socket, not its body; a body that
//! does not arrive is refused; a stream nobody reads, or that runs forever, is ended and logged; a
//! client that leaves stops its rescue; open streams are capped; a burst of huge bodies gets only
//! 413s and 429s while `/health` keeps answering.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, ask_stream};
use freerouter_tests::simulator::{Behavior, Simulator};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn one_route(
    sim: &Simulator,
    tweak: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> TestGateway {
    tweak(
        GatewayConfig::new()
            .provider("pa", sim)
            .route("pa", "model-a", 1),
    )
    .start()
    .await
}

/// Opens a raw connection and sends `head` (request line and headers, without the blank line)
/// with `Content-Length: declared`, then `body` (possibly less than declared).
async fn raw_post(gateway: &TestGateway, declared: usize, body: &[u8]) -> TcpStream {
    let addr = gateway.url.trim_start_matches("http://").to_string();
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {declared}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body).await.unwrap();
    tcp
}

/// Reads until the end of the response head; its status code.
async fn status_of(tcp: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(within, async {
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Some(())
    })
    .await;
    read.ok().flatten()?;
    let line = String::from_utf8_lossy(&seen);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The request-log rows' outcomes once the writer has flushed them.
async fn logged_outcomes(gateway: &TestGateway, want: usize) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = gateway
            .gateway
            .store
            .recent_request_logs(100)
            .await
            .unwrap();
        if rows.len() >= want || Instant::now() > until {
            return rows.into_iter().map(|r| r.outcome).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_request_the_full_queue_refuses_is_refused_before_its_body_is_read() {
    let sim = Simulator::start().await;
    sim.model("model-a").latency_ms(3_000);
    let gateway = one_route(&sim, |c| {
        c.set("limits.max_concurrent_requests", "1")
            .set("limits.max_queue", "0")
            .set("routing.header_timeout_ms", "10000")
    })
    .await;
    let holder = tokio::spawn({
        let (http, url) = (gateway.http.clone(), gateway.url("/v1/chat/completions"));
        async move { http.post(url).json(&ask("auto", "slow")).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Declares 100 kB, sends 10 bytes, and never the rest.
    let mut tcp = raw_post(&gateway, 100_000, b"{\"model\":").await;
    let status = status_of(&mut tcp, Duration::from_secs(2)).await;
    assert_eq!(status, Some(429), "refused at once, body unread");
    assert_eq!(holder.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_frees_its_slot() {
    let sim = Simulator::start().await;
    sim.model("model-a");
    let gateway = one_route(&sim, |c| {
        c.set("server.body_read_timeout_ms", "300")
            .set("limits.max_concurrent_requests", "1")
    })
    .await;
    let mut tcp = raw_post(&gateway, 5_000, b"{\"messages\":").await;
    assert_eq!(status_of(&mut tcp, Duration::from_secs(3)).await, Some(408));
    let response = gateway.chat(&ask("auto", "next")).await;
    assert_eq!(response.status(), 200, "the slot was given back");
    assert_eq!(sim.total_calls(), 1);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_stream_is_dropped_settled_and_logged() {
    let sim = Simulator::start().await;
    sim.model("model-a").always(Behavior::HugeBody {
        bytes: 64 * 1024 * 1024,
    });
    let gateway = one_route(&sim, |c| {
        c.set("routing.stream_send_timeout_ms", "500")
            .set("routing.max_upstream_body_bytes", "1048576")
    })
    .await;
    let body = serde_json::to_vec(&ask_stream("auto", "a long answer")).unwrap();
    let mut tcp = raw_post(&gateway, body.len(), &body).await;
    assert_eq!(status_of(&mut tcp, Duration::from_secs(5)).await, Some(200));
    // The client keeps the connection open but reads nothing more.
    let outcomes = logged_outcomes(&gateway, 1).await;
    assert_eq!(outcomes, vec!["client_too_slow".to_string()]);
    drop(tcp);
}

#[tokio::test]
async fn a_client_that_leaves_during_a_rescue_stops_it_before_another_upstream_is_called() {
    let (a, b, c) = (
        Simulator::start().await,
        Simulator::start().await,
        Simulator::start().await,
    );
    a.model("model-a")
        .answer("one two three four five six seven eight")
        .chunk_delay_ms(100)
        .then(Behavior::CutAfter { chunks: 3 });
    b.model("model-b").always(Behavior::HangBeforeHeaders);
    c.model("model-c");
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .provider("pc", &c)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .route("pc", "model-c", 3)
        .set("routing.stream_header_timeout_ms", "2000")
        .start()
        .await;
    let response = gateway.chat(&ask_stream("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while seen.matches("delta").count() < 4 {
        let chunk = body.next().await.expect("the first chunks").unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // A has cut; the rescue is waiting on B, and the client goes away meanwhile.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.total_calls(), 1, "the rescue is under way on B");
    drop(body);
    // B stays silent for 2 s; C would be next if anyone were listening.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(
        c.total_calls(),
        0,
        "no upstream is called for a client that left"
    );
    let outcomes = logged_outcomes(&gateway, 1).await;
    assert_eq!(outcomes, vec!["client_closed".to_string()]);
}

#[tokio::test]
async fn streams_beyond_max_open_streams_are_refused_with_429_while_other_requests_go_on() {
    let sim = Simulator::start().await;
    sim.model("model-a")
        .answer(&"word ".repeat(40))
        .chunk_delay_ms(100);
    let gateway = one_route(&sim, |c| c.set("limits.max_open_streams", "2")).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let response = gateway.chat(&ask_stream("auto", "long")).await;
        assert_eq!(response.status(), 200);
        open.push(response);
    }
    let third = gateway.chat(&ask_stream("auto", "one more")).await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    let error: Value = third.json().await.unwrap();
    assert_eq!(error["error"]["code"], "too_many_streams");
    assert_eq!(gateway.chat(&ask("auto", "plain")).await.status(), 200);
    drop(open);
    // Once the streams are gone, their places are free again.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let again = gateway.chat(&ask_stream("auto", "again")).await;
        if again.status() == 200 {
            break;
        }
        assert!(Instant::now() < until, "the permits came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_stream_past_its_total_deadline_ends_with_an_error_event_and_is_logged() {
    let sim = Simulator::start().await;
    sim.model("model-a")
        .answer(&"word ".repeat(100))
        .chunk_delay_ms(100);
    let gateway = one_route(&sim, |c| c.set("routing.stream_total_timeout_ms", "1000")).await;
    let started = Instant::now();
    let response = gateway.chat(&ask_stream("auto", "forever")).await;
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the stream ends")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let last = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .last()
        .unwrap()
        .trim()
        .trim_start_matches("data:")
        .trim()
        .to_string();
    let event: Value = serde_json::from_str(&last).expect("a JSON error event");
    assert_eq!(event["error"]["code"], "stream_timeout");
    assert_eq!(
        logged_outcomes(&gateway, 1).await,
        vec!["stream_timeout".to_string()]
    );
}

#[tokio::test]
async fn a_burst_of_huge_and_excess_bodies_gets_only_413s_and_429s_while_health_answers() {
    let sim = Simulator::start().await;
    sim.model("model-a").latency_ms(1_500);
    let gateway = one_route(&sim, |c| {
        c.set("limits.max_concurrent_requests", "4")
            .set("limits.max_queue", "10")
            .set("routing.header_timeout_ms", "10000")
            .set("server.max_body_bytes", "1048576")
    })
    .await;
    let padded = |bytes: usize| {
        let mut body = ask("auto", "hi");
        body["pad"] = json!(vec![0; bytes / 2]);
        bytes::Bytes::from(serde_json::to_vec(&body).unwrap())
    };
    let (fits, too_big) = (padded(900_000), padded(1_200_000));
    let mut requests = Vec::new();
    for i in 0..40 {
        let body = if i % 4 == 0 {
            too_big.clone()
        } else {
            fits.clone()
        };
        let (http, url) = (gateway.http.clone(), gateway.url("/v1/chat/completions"));
        requests.push(tokio::spawn(async move {
            http.post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let health = tokio::spawn({
        let (http, url) = (gateway.http.clone(), gateway.url("/health"));
        async move {
            let mut answered = 0;
            for _ in 0..20 {
                let ok = tokio::time::timeout(Duration::from_secs(2), http.get(&url).send())
                    .await
                    .is_ok_and(|r| r.is_ok_and(|r| r.status() == 200));
                assert!(ok, "/health answers under the burst");
                answered += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answered
        }
    });
    let mut seen = std::collections::BTreeMap::new();
    for request in requests {
        let status = request.await.unwrap().expect("every request is answered");
        *seen.entry(status).or_insert(0) += 1;
    }
    assert_eq!(health.await.unwrap(), 20);
    assert_eq!(seen.get(&413), Some(&10), "{seen:?}");
    assert!(
        seen.keys().all(|s| [200, 413, 429].contains(s)),
        "only answers, 413s and 429s: {seen:?}"
    );
    assert!(seen.get(&200).is_some_and(|n| *n >= 4), "{seen:?}");
}
