//! Clients that hold on: headers sent a byte at a time, a connection that says nothing, a body
//! that never comes, more connections than the gateway takes. None of them holds a connection
//! past its timeout, and the cap refuses promptly with a 503 the client can read.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask};
use freerouter_tests::raw_http::{self, read_response};
use freerouter_tests::simulator::Simulator;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "admin-token-conn";

async fn gateway(sim: &Simulator, settings: &[(&str, &str)]) -> TestGateway {
    sim.model("m");
    let mut config = GatewayConfig::new()
        .set("auth.admin_token", ADMIN)
        .provider("p", sim)
        .route("p", "m", 1);
    for (key, value) in settings {
        config = config.set(key, value);
    }
    config.start().await
}

/// Reads until the server closes the connection; how long that took, and what came.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    read.ok().map(|_| (started.elapsed(), got))
}

#[tokio::test]
async fn a_client_sending_its_headers_a_line_at_a_time_is_disconnected_at_the_header_timeout() {
    let sim = Simulator::start().await;
    let gateway = gateway(&sim, &[("server.header_read_timeout_ms", "400")]).await;
    let stream = TcpStream::connect(gateway.gateway.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // Slowloris: a header line every 100 ms, never the blank line that ends them.
    let drip = tokio::spawn(async move {
        let _ = writer
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await;
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut got)).await;
    drip.abort();
    assert!(
        closed.is_ok(),
        "the gateway still holds a connection whose headers never end, after 5 s"
    );
    assert!(
        !String::from_utf8_lossy(&got).contains(" 200 "),
        "no answer to an unfinished request: {:?}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn a_connection_that_never_says_anything_is_closed() {
    let sim = Simulator::start().await;
    let gateway = gateway(&sim, &[("server.header_read_timeout_ms", "300")]).await;
    let mut silent = TcpStream::connect(gateway.gateway.addr).await.unwrap();
    let closed = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "a silent connection is still open after 5 s"
    );
    assert_eq!(
        gateway.get("/health").await.status(),
        200,
        "others are served"
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_on_chat_the_admin_api_and_the_console() {
    let sim = Simulator::start().await;
    let gateway = gateway(&sim, &[("server.body_read_timeout_ms", "300")]).await;
    let addr = gateway.gateway.addr;
    let requests = [
        ("/v1/chat/completions", "Content-Type: application/json\r\n"),
        (
            "/v1/gateway/models/disable",
            "Content-Type: application/json\r\nAuthorization: Bearer admin-token-conn\r\n",
        ),
        (
            "/login",
            "Content-Type: application/x-www-form-urlencoded\r\n",
        ),
    ];
    for (path, headers) in requests {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // 1,000 bytes announced, 20 sent, then nothing.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: 1000\r\n\r\n{{\"messages\": [ {{\"r"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer 5 s into a body that never came"))
            .unwrap_or_else(|| panic!("{path}: the connection closed without an answer"));
        assert_eq!(answer.status, 408, "{path}: {answer:?}");
        assert_eq!(answer.error_code(), "request_timeout", "{path}");
        assert!(
            answer.json()["error"]["message"].is_string(),
            "OpenAI's error shape"
        );
    }
    assert_eq!(sim.calls("m"), 0, "nothing half-read went upstream");
    assert_eq!(gateway.chat(&ask("auto", "hi")).await.status(), 200);
}

#[tokio::test]
async fn connections_over_the_cap_get_a_prompt_503_and_room_comes_back_when_one_closes() {
    let sim = Simulator::start().await;
    let gateway = gateway(&sim, &[("server.max_connections", "2")]).await;
    let addr = gateway.gateway.addr;
    let keep_alive = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // Two clients take the two places and keep their connections open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(keep_alive.as_bytes()).await.unwrap();
        let answer = read_response(&mut stream).await.expect("an answer");
        assert_eq!(answer.status, 200);
        held.push(stream);
    }
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        raw_http::send(addr, &raw_http::get("/health", "127.0.0.1", "")),
    )
    .await
    .expect("a connection over the cap is answered, not left waiting");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.error_code(), "too_many_connections");
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    // One client leaves: a new one gets in.
    drop(held.remove(0));
    let mut served = None;
    for _ in 0..50 {
        let answer = raw_http::send(addr, &raw_http::get("/health", "127.0.0.1", "")).await;
        if answer.status == 200 {
            served = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served.is_some(),
        "a place came back when a connection closed"
    );
    // The one still held was never disturbed.
    let mut still = held.remove(0);
    still.write_all(keep_alive.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut still).await.unwrap().status, 200);
}
