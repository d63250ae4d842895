//! Client API keys on `/v1/*`.

use freerouter_tests::harness::{GatewayConfig, ask, init_tls};
use freerouter_tests::simulator::Simulator;

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");

#[tokio::test]
async fn with_client_keys_configured_a_request_needs_one_and_gets_401_in_openai_shape_without() {
    let sim = Simulator::start().await;
    sim.model("m");
    let gateway = GatewayConfig::new()
        .set("auth.api_keys", "sk-client-1,sk-client-2")
        .provider("p", &sim)
        .route("p", "m", 1)
        .start()
        .await;
    let post = |key: Option<(&'static str, &'static str)>| {
        let mut request = gateway
            .http
            .post(gateway.url("/v1/chat/completions"))
            .json(&ask("auto", "hi"));
        if let Some((name, value)) = key {
            request = request.header(name, value);
        }
        request.send()
    };
    for refused in [
        None,
        Some(("authorization", "Bearer sk-wrong")),
        Some(("x-api-key", "sk-client-")),
    ] {
        let response = post(refused).await.unwrap();
        assert_eq!(response.status(), 401, "{refused:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer")
        );
    }
    assert_eq!(sim.calls("m"), 0);
    assert_eq!(
        post(Some(("authorization", "Bearer sk-client-2")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post(Some(("x-api-key", "sk-client-1")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(gateway.get("/v1/models").await.status(), 401);
    assert_eq!(
        gateway.get("/health").await.status(),
        200,
        "operations stay open"
    );
    assert_eq!(sim.calls("m"), 2);
}

#[tokio::test]
async fn listening_beyond_loopback_without_client_keys_is_warned_about_at_start() {
    init_tls();
    let dir = tempfile::tempdir().unwrap();
    let gateway = GatewayConfig::new()
        .set("server.listen", "0.0.0.0:0")
        .start_process(GATEWAY, dir.path())
        .await;
    // The warning follows the "listening" line: give the log reader a moment to see it.
    let started = std::time::Instant::now();
    let mut warned = Vec::new();
    while warned.is_empty() && started.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        warned = gateway.log_lines_with("LISTENING BEYOND LOOPBACK WITHOUT CLIENT KEYS");
    }
    gateway.kill().await;
    assert_eq!(warned.len(), 1);
}
