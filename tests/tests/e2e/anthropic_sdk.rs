//! The official Anthropic Python SDK as a client: a message, a stream, a tool round trip (plain
//! and streamed), count_tokens, a refused request and the model list.

use freerouter_tests::harness::GatewayConfig;
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};
use std::process::Command;

const ANSWER: &str = "Hello from the simulated upstream.";

/// Whether `python3 -c "import anthropic"` works; in CI its absence is a failure, elsewhere a skip.
fn sdk_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import anthropic"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Anthropic SDK is missing in CI: .ci/run installs it (pip install anthropic)"
        );
        eprintln!("skipping: `pip install anthropic` to run the SDK test");
    }
    ok
}

#[tokio::test]
async fn the_anthropic_python_sdk_drives_the_gateway() {
    if !sdk_available() {
        return;
    }
    let sim = Simulator::start().await;
    let call = Behavior::ToolCall {
        name: "get_weather".into(),
        arguments: "{\"city\":\"Paris\"}".into(),
    };
    sim.model("sdk-model")
        .answer(ANSWER)
        .response_model("sdk-model-2025")
        .then(Behavior::Ok)
        .then(Behavior::Ok)
        .then(call.clone())
        .then(Behavior::Ok)
        .then(call);
    let gateway = GatewayConfig::new()
        .set("auth.api_keys", "sk-sdk-client")
        .provider("p", &sim)
        .route_with(
            "p",
            "sdk-model",
            1,
            "context_window = 100000\ntags = [\"tools\"]",
        )
        .start()
        .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/anthropic_sdk_check.py");
    let base_url = gateway.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base_url)
            .arg("sk-sdk-client")
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    assert!(
        output.status.success(),
        "the SDK script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    assert_eq!(seen["text"], ANSWER);
    assert_eq!(seen["model"], "sdk-model-2025");
    assert_eq!(seen["stop_reason"], "end_turn");
    assert_eq!(seen["route_header"], "p/sdk-model");
    assert_eq!(seen["streamed"], ANSWER);
    assert_eq!(seen["stream_stop_reason"], "end_turn");
    assert!(seen["stream_output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(seen["tool_stop_reason"], "tool_use");
    assert_eq!(seen["tool_name"], "get_weather");
    assert_eq!(seen["tool_input"], json!({"city": "Paris"}));
    assert_eq!(seen["answered"], ANSWER);
    assert_eq!(seen["streamed_tool_input"], json!({"city": "Paris"}));
    assert_eq!(seen["streamed_tool_stop_reason"], "tool_use");
    assert!(seen["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        seen["bad_request"],
        json!({"status": 400, "type": "invalid_request_error"})
    );
    assert_eq!(
        seen["models"],
        json!(["auto", "auto-fast", "auto-balanced", "p/sdk-model"])
    );
    let sent = sim.requests("sdk-model");
    assert_eq!(
        sent.len(),
        5,
        "count_tokens and the bad request never went upstream"
    );
    assert_eq!(sent[3].body["messages"][2]["role"], "tool");
    assert_eq!(sent[3].body["messages"][2]["content"], "18C");
}
