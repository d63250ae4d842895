//! The official OpenAI Python SDK's `responses` and `completions` clients against the gateway:
//! plain, streamed (raw events and the SDK's accumulating helper), a function-tool round trip,
//! and legacy completions whole and streamed.

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

const ANSWER: &str = "Hello from the simulated upstream.";

#[tokio::test]
async fn the_openai_python_sdk_drives_responses_and_completions() {
    if !sdk_available() {
        return;
    }
    let sim = Simulator::start().await;
    sim.model("sdk-model")
        .answer(ANSWER)
        .response_model("sdk-model-2025")
        .then(Behavior::Ok)
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
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/openai_responses_check.py"
    );
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
    assert_eq!(seen["output_text"], ANSWER);
    assert_eq!(seen["model"], "sdk-model-2025");
    assert_eq!(seen["status"], "completed");
    assert_eq!(seen["route_header"], "p/sdk-model");
    assert!(seen["usage_total"].as_u64().unwrap() > 0);
    let types: Vec<&str> = seen["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"response.created"));
    assert_eq!(types.last(), Some(&"response.completed"));
    let numbers: Vec<u64> = seen["sequence_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
    assert_eq!(seen["streamed"], ANSWER);
    assert_eq!(seen["completed_text"], ANSWER);
    assert_eq!(seen["helper_text"], ANSWER);
    assert_eq!(seen["tool_name"], "get_weather");
    assert_eq!(seen["tool_arguments"], json!({"city": "Paris"}));
    assert_eq!(seen["after_tool"], ANSWER);
    assert_eq!(seen["completion_object"], "text_completion");
    assert_eq!(seen["completion_text"], ANSWER);
    assert_eq!(seen["completion_streamed"], ANSWER);

    let sent = sim.requests("sdk-model");
    assert_eq!(sent.len(), 7);
    assert_eq!(
        sent[0].body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(sent[3].body["tools"][0]["function"]["name"], "get_weather");
    let round_trip = &sent[4].body["messages"];
    let call_id = seen["tool_call_id"].as_str().unwrap();
    assert_eq!(round_trip[1]["role"], "assistant");
    assert_eq!(round_trip[1]["tool_calls"][0]["id"], call_id);
    assert_eq!(
        round_trip[1]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(
        round_trip[2],
        json!({"role": "tool", "content": "Sunny, 24 C", "tool_call_id": call_id})
    );
}
