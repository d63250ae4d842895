//! Shutdown loses nothing: SIGTERM while 50 streams are open, and the streams outlast the grace.
//! The gateway ends them itself, settles every reservation, returns its leases and writes every
//! request-log row before it exits; the file read afterwards shows all of it.

use freerouter_tests::harness::{GatewayConfig, ask_stream};
use freerouter_tests::simulator::Simulator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::time::Duration;

/// The gateway's real `main.rs`, built by this package as `gateway-under-test`.
const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");
const STREAMS: usize = 50;

#[tokio::test]
async fn sigterm_with_50_open_streams_settles_every_reservation_and_writes_every_log_row() {
    let sim = Simulator::start().await;
    // Thirty words at 200 ms each: six seconds a stream, far past a one-second grace.
    let answer: Vec<String> = (0..30).map(|i| format!("word{i}")).collect();
    sim.model("m").answer(&answer.join(" ")).chunk_delay_ms(200);
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayConfig::new()
        .set("server.shutdown_grace_s", "1")
        .set("limits.max_concurrent_requests", "64")
        .set("routing.stream_idle_timeout_ms", "5000")
        .toml(&format!(
            "[providers.p]\nbase_url = \"{}\"\napi_keys = [\"sk-shutdown\"]\nlimits = {{ rpd = 100000 }}",
            sim.base_url()
        ))
        .route("p", "m", 1)
        .start_process(GATEWAY, dir.path())
        .await;
    freerouter_tests::harness::init_tls();
    let http = reqwest::Client::new();
    let (opened, mut open) = tokio::sync::mpsc::channel(STREAMS);
    let streams: Vec<_> = (0..STREAMS)
        .map(|i| {
            let (http, url, opened) = (
                http.clone(),
                gateway.url("/v1/chat/completions"),
                opened.clone(),
            );
            tokio::spawn(async move {
                let mut response = http
                    .post(url)
                    .json(&ask_stream("auto", &format!("stream {i}")))
                    .send()
                    .await
                    .expect("the stream opens");
                assert_eq!(response.status(), 200);
                let first = response.chunk().await.expect("a first chunk");
                assert!(first.is_some());
                opened.send(()).await.unwrap();
                // Read on until the gateway ends it (or goes).
                while let Ok(Some(_)) = response.chunk().await {}
            })
        })
        .collect();
    for _ in 0..STREAMS {
        tokio::time::timeout(Duration::from_secs(20), open.recv())
            .await
            .expect("every stream opens within 20 s");
    }
    let status = gateway.terminate().await;
    assert!(status.success(), "a clean exit: {status:?}");
    for stream in streams {
        stream.await.expect("a stream task");
    }

    let mut conn = SqliteConnectOptions::new()
        .filename(dir.path().join("freerouter.db"))
        .connect()
        .await
        .unwrap();
    let (logged,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM request_log WHERE stream = 1 AND route_id = 'p/m'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(logged, STREAMS as i64, "every stream's log row was written");
    let (unsettled, requests): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(settled = 0), 0), COALESCE(SUM(requests), 0) FROM quota_ledger",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(unsettled, 0, "every lease was settled and returned");
    assert_eq!(
        requests, STREAMS as i64,
        "every reservation counted once, nothing more held"
    );
    assert_eq!(sim.calls("m"), STREAMS);
    conn.close().await.unwrap();
}
