//! Demo mode end to end: the real binary started with `--demo` (or `FREEROUTER_DEMO=1`) on port 0
//! answers its first request from a simulated `demo/…` tier, says so in `/v1/models`, the start
//! log and a console banner, keeps its own database file, and a loop of requests shows a fallback
//! and then `429 quota_exhausted`. Without keys and without `--demo`, the 503 and the start log
//! point to `--demo`.

use freerouter_tests::harness::{GatewayConfig, ask, header};
use freerouter_tests::simulator::Simulator;
use serde_json::Value;

/// The gateway's real `main.rs`, built by this package as `gateway-under-test`.
const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");

async fn chat(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.post(format!("{url}/v1/chat/completions"))
        .json(&ask("auto", "What can you do?"))
        .send()
        .await
        .expect("the gateway answers")
}

#[tokio::test]
async fn the_gateway_started_with_demo_answers_at_once_labels_everything_and_runs_out_of_quota() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayConfig::new()
        .start_service_with_args(GATEWAY, dir.path(), "gateway listening", &["--demo"])
        .await;
    let http = reqwest::Client::new();

    let first = chat(&http, &gateway.url).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-gateway-route"), "demo/sage-70b");
    let body: Value = first.json().await.unwrap();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("Hello from demo/sage-70b"), "{text}");
    assert!(text.contains("simulated"), "{text}");

    let models: Value = http
        .get(gateway.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .filter(|id| !id.starts_with("auto"))
        .collect();
    assert_eq!(
        ids,
        [
            "demo/sage-70b",
            "demo/flaky-32b",
            "demo/swift-8b",
            "demo/pocket-3b"
        ]
    );

    let page = http.get(gateway.url("/")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"<div class="demo-banner" role="note"><strong>Demo mode</strong>"#));

    let listening = gateway.log_lines_with("gateway listening");
    assert!(listening[0].contains(r#""mode":"demo""#), "{listening:?}");
    assert!(listening[0].contains("freerouter-demo.db"), "{listening:?}");
    let banner = gateway.log_lines_with("DEMO MODE");
    assert!(
        banner[0].contains("demo/sage-70b, demo/flaky-32b"),
        "{banner:?}"
    );
    assert!(dir.path().join("freerouter-demo.db").exists());
    assert!(
        !dir.path().join("freerouter.db").exists(),
        "the real file is never opened"
    );

    // A newcomer's loop: the strongest tier's quota runs out, the flaky one fails over, and when
    // every tier is spent for the minute the answer is 429 quota_exhausted.
    let mut fallbacks = Vec::new();
    let mut exhausted = None;
    for _ in 0..60 {
        let response = chat(&http, &gateway.url).await;
        if response.status() == 429 {
            exhausted = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
        let trail = header(&response, "x-gateway-trail");
        if header(&response, "x-gateway-attempts") != "1" {
            fallbacks.push(trail);
        }
    }
    assert!(
        fallbacks
            .iter()
            .any(|t| t.starts_with("demo/flaky-32b:5xx") && t.ends_with("demo/swift-8b:ok")),
        "{fallbacks:?}"
    );
    let exhausted = exhausted.expect("the loop ends with every tier out of quota");
    assert!(header(&exhausted, "retry-after").parse::<u64>().unwrap() >= 1);
    let error: Value = exhausted.json().await.unwrap();
    assert_eq!(error["error"]["code"], "quota_exhausted");
    gateway.terminate().await;
}

#[tokio::test]
async fn freerouter_demo_in_the_environment_starts_demo_mode_too() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayConfig::new()
        .env_var("FREEROUTER_DEMO", "1")
        .start_process(GATEWAY, dir.path())
        .await;
    let response = chat(&reqwest::Client::new(), &gateway.url).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "x-gateway-route").starts_with("demo/"));
    gateway.terminate().await;
}

#[tokio::test]
async fn without_keys_or_demo_the_503_and_the_start_log_point_to_demo_mode() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayConfig::new()
        .start_process(GATEWAY, dir.path())
        .await;
    let response = chat(&reqwest::Client::new(), &gateway.url).await;
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "no_routes_available");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("--demo"), "{message}");
    let warned = gateway.log_lines_with("no route can be served yet");
    assert!(warned[0].contains("--demo"), "{warned:?}");
    gateway.terminate().await;
}

#[tokio::test]
async fn demo_mode_serves_only_its_tiers_whatever_the_config_declares() {
    let sim = Simulator::start().await;
    sim.model("real-model");
    let gateway = GatewayConfig::new()
        .set("demo.enabled", "true")
        .provider("pa", &sim)
        .route("pa", "real-model", 1)
        .start()
        .await;
    let response = gateway.chat(&ask("pa/real-model", "hi")).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "x-gateway-route").starts_with("demo/"));
    assert_eq!(sim.calls("real-model"), 0);
    let db = gateway.db_path.with_file_name("freerouter-demo.db");
    assert!(db.exists());
    gateway.stop().await;
}
