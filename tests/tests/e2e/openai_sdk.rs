//! The official OpenAI Python SDK as a client: plain, streamed, and a tool call passed through.

use freerouter_tests::harness::GatewayConfig;
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};
use std::process::Command;

/// Whether `python3 -c "import openai"` works; in CI its absence is a failure, elsewhere a skip.
fn sdk_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "the OpenAI SDK is missing in CI: .ci/run installs it (pip install openai)"
        );
        eprintln!("skipping: `pip install openai` to run the SDK test");
    }
    ok
}

#[tokio::test]
async fn the_openai_python_sdk_drives_the_gateway() {
    if !sdk_available() {
        return;
    }
    let sim = Simulator::start().await;
    sim.model("sdk-model")
        .answer("Hello from the simulated upstream.")
        .response_model("sdk-model-2025")
        .then(Behavior::Ok)
        .then(Behavior::Ok)
        .then(Behavior::ToolCall {
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into(),
        });
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route_with(
            "p",
            "sdk-model",
            1,
            "context_window = 100000\ntags = [\"tools\"]",
        )
        .start()
        .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/openai_sdk_check.py");
    let base_url = gateway.url("/v1");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3").arg(script).arg(base_url).output()
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
    assert_eq!(seen["content"], "Hello from the simulated upstream.");
    assert_eq!(seen["model"], "sdk-model-2025");
    assert_eq!(seen["route_header"], "p/sdk-model");
    assert_eq!(seen["streamed"], "Hello from the simulated upstream.");
    assert!(seen["stream_usage"].as_u64().unwrap() > 0);
    assert_eq!(seen["tool_name"], "get_weather");
    assert_eq!(seen["tool_arguments"], json!({"city": "Paris"}));
    assert_eq!(seen["finish_reason"], "tool_calls");
    let sent = sim.requests("sdk-model");
    assert!(
        sent[2].body["tools"][0]["function"]["name"] == "get_weather",
        "tools passed through"
    );
}
