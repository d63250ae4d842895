//! Gateways as separate OS processes on one SQLite file.

use freerouter_tests::harness::{GatewayConfig, ask};
use freerouter_tests::simulator::{KeyLimits, Simulator};

/// The gateway's real `main.rs`, built by this package as `gateway-under-test`.
const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");

#[tokio::test]
async fn two_gateway_processes_on_one_database_never_exceed_a_keys_rpm_together() {
    let sim = Simulator::start().await;
    sim.model("m");
    sim.limit_key(
        "sk-shared",
        KeyLimits {
            rpm: Some(10),
            ..KeyLimits::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let config = GatewayConfig::new()
        .toml(&format!(
            "[providers.p]\nbase_url = \"{}\"\napi_keys = [\"sk-shared\"]\nlimits = {{ rpm = 10 }}",
            sim.base_url()
        ))
        .route("p", "m", 1);
    let first = config.start_process(GATEWAY, dir.path()).await;
    let second = config.start_process(GATEWAY, dir.path()).await;
    assert_ne!(first.url, second.url);

    freerouter_tests::harness::init_tls();
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = if i % 2 == 0 {
            first.url("/v1/chat/completions")
        } else {
            second.url("/v1/chat/completions")
        };
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&ask("auto", "shared key"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (
                status,
                body.pointer("/error/code")
                    .and_then(|c| c.as_str())
                    .map(str::to_string),
            )
        }));
    }
    let mut served = 0;
    for task in tasks {
        match task.await.unwrap() {
            (200, _) => served += 1,
            (429, Some(code)) => assert_eq!(code, "quota_exhausted"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(served, 10, "together they spent exactly the key's 10 RPM");
    assert_eq!(sim.calls("m"), 10);
    assert_eq!(sim.limit_refusals(), 0, "the provider never had to refuse");
    first.kill().await;
    second.kill().await;
}

#[tokio::test]
async fn the_gateway_started_with_no_keys_serves_the_default_catalog_and_answers_503_naming_the_variables()
 {
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayConfig::new()
        .set("catalog.defaults", "true")
        .start_process(GATEWAY, dir.path())
        .await;
    freerouter_tests::harness::init_tls();
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/chat/completions"))
        .json(&ask("auto", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_routes_available");
    let message = body["error"]["message"].as_str().unwrap();
    for var in [
        "GROQ_API_KEY",
        "GEMINI_API_KEY",
        "OPENROUTER_API_KEY",
        "OLLAMA_BASE_URL",
    ] {
        assert!(message.contains(var), "{var} missing from: {message}");
    }
    gateway.kill().await;
}

#[test]
fn an_invalid_setting_stops_the_gateway_before_it_listens_and_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(GATEWAY)
        .env_clear()
        .env("FREEROUTER__SERVER__LISTEN", "nowhere")
        .env("FREEROUTER__AUTH__ADMIN_TOKEN", "very-secret-admin-token")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("server.listen"), "{said}");
    assert!(
        !said.contains("very-secret-admin-token"),
        "a secret was printed: {said}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing was created before validation"
    );
}
