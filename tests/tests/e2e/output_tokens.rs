//! Output tokens as each provider counts them (issue 13 item 3): `max_tokens` above a route's
//! maximum output is clamped for that route, and where a provider counts `max_tokens` against its
//! token window before answering (Cerebras, `counts_max_tokens` in the catalog), the gateway's
//! reservation does too, so it never sends what the provider would refuse.

use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, header};
use freerouter_tests::simulator::{Dialect, KeyLimits, Simulator};
use serde_json::{Value, json};
use std::time::Duration;

fn asking(max_field: &str, max: u64) -> Value {
    json!({"model": "auto", max_field: max, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test]
async fn max_tokens_above_a_route_s_maximum_output_is_clamped_for_that_route() {
    let sim = Simulator::start().await;
    sim.model("model-a");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        // 32,000 of output would not even fit this window: clamped, the request does.
        .route_with(
            "lab",
            "model-a",
            1,
            "context_window = 16000\nmax_output = 2048",
        )
        .start()
        .await;
    for field in ["max_tokens", "max_completion_tokens"] {
        let response = gateway.chat(&asking(field, 32_000)).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let sent = sim.requests("model-a").last().cloned().unwrap();
        assert_eq!(
            sent.body[field], 2048,
            "{field} clamped to the route's maximum output"
        );
    }
    let response = gateway.chat(&asking("max_tokens", 500)).await;
    assert_eq!(response.status(), 200);
    let sent = sim.requests("model-a").last().cloned().unwrap();
    assert_eq!(
        sent.body["max_tokens"], 500,
        "a smaller ask is sent as asked"
    );
}

/// Waits out the last seconds of a clock minute: the simulator counts in fixed minutes.
async fn clear_of_the_minute_boundary() {
    let into = now_ms() % 60_000;
    if into > 50_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into) as u64 + 100)).await;
    }
}

/// Cerebras (on the simulator speaking Cerebras, which counts `max_tokens` on arrival) with a
/// 10,000-token minute, and a fallback; `counts` overrides the catalog's flag.
async fn cerebras_then_lab(
    counts: bool,
) -> (Simulator, Simulator, freerouter_tests::harness::TestGateway) {
    let sim = Simulator::start().await;
    sim.speak(Dialect::Cerebras);
    sim.limit_key(
        "cb-key",
        KeyLimits {
            tpm: Some(10_000),
            ..KeyLimits::default()
        },
    );
    sim.model("gpt-oss-120b");
    let backup = Simulator::start().await;
    backup.model("backup");
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.cerebras]\nbase_url = \"{}\"\napi_keys = [\"cb-key\"]\nlimits = {{ tpm = 10000 }}{}",
            sim.base_url(),
            if counts { "" } else { "\ncounts_max_tokens = false" }
        ))
        .provider("lab", &backup)
        .route_with("cerebras", "gpt-oss-120b", 1, "context_window = 65536\nmax_output = 8192")
        .route("lab", "backup", 2)
        .start()
        .await;
    (sim, backup, gateway)
}

#[tokio::test]
async fn cerebras_counts_max_tokens_before_answering_and_the_reservation_does_too() {
    clear_of_the_minute_boundary().await;
    let (sim, backup, gateway) = cerebras_then_lab(true).await;
    let response = gateway.chat(&asking("max_tokens", 6_000)).await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "cerebras/gpt-oss-120b"
    );
    // A short answer, but Cerebras counted 6,000: another 6,000 do not fit its minute.
    let response = gateway.chat(&asking("max_tokens", 6_000)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/backup");
    assert_eq!(
        header(&response, "x-gateway-attempts"),
        "1",
        "nothing sent to be refused"
    );
    assert_eq!(sim.limit_refusals(), 0);
    assert_eq!((sim.calls("gpt-oss-120b"), backup.calls("backup")), (1, 1));
}

#[tokio::test]
async fn without_the_flag_the_same_requests_provoke_cerebras_s_429() {
    clear_of_the_minute_boundary().await;
    let (sim, _backup, gateway) = cerebras_then_lab(false).await;
    let response = gateway.chat(&asking("max_tokens", 6_000)).await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "cerebras/gpt-oss-120b"
    );
    let response = gateway.chat(&asking("max_tokens", 6_000)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/backup");
    assert_eq!(
        sim.limit_refusals(),
        1,
        "charged only the short answer, the gateway sent what Cerebras refused"
    );
}
