//! The official OpenAI Python SDK's `embeddings` client against the gateway: its default (which
//! asks for base64 and unpacks float32s), floats by alias, token arrays, and refusals it reads
//! as API errors — the wire protocol Open WebUI, LangChain and Continue use for retrieval.

use freerouter_tests::harness::GatewayConfig;
use freerouter_tests::simulator::{
    DEFAULT_DIMENSIONS, Simulator, embedding_of, token_embedding_of,
};
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

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("a vector")
        .iter()
        .map(|n| n.as_f64().unwrap())
        .collect()
}

fn as_f32(vector: &[f64]) -> Vec<f32> {
    vector.iter().map(|x| *x as f32).collect()
}

#[tokio::test]
async fn the_openai_python_sdk_drives_embeddings() {
    if !sdk_available() {
        return;
    }
    let sim = Simulator::start().await;
    sim.model("embed-a").response_model("embed-a-2026");
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route_with(
            "p",
            "embed-a",
            1,
            "context_window = 8192\ntags = [\"embeddings\"]\naliases = [\"sim-embed\"]",
        )
        .start()
        .await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/openai_embeddings_check.py"
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
    let hello = embedding_of("embed-a", "hello", DEFAULT_DIMENSIONS);
    assert_eq!(
        as_f32(&numbers(&seen["default_vector"])),
        as_f32(&hello),
        "the SDK's base64 default unpacks to the upstream's floats"
    );
    assert_eq!(seen["default_model"], "embed-a-2026");
    assert_eq!(seen["default_usage"], 1);
    assert_eq!(seen["route_header"], "p/embed-a");
    assert_eq!(seen["object"], "list");
    assert_eq!(
        seen["float_vectors"],
        json!([hello, embedding_of("embed-a", "world", DEFAULT_DIMENSIONS)])
    );
    assert_eq!(seen["float_indexes"], json!([0, 1]));
    // Asked without a format: base64 again, so float32s.
    let token_vectors: Vec<Vec<f32>> = seen["token_vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| as_f32(&numbers(v)))
        .collect();
    assert_eq!(
        token_vectors,
        vec![
            as_f32(&token_embedding_of(
                "embed-a",
                &[1, 2, 3],
                DEFAULT_DIMENSIONS
            )),
            as_f32(&token_embedding_of("embed-a", &[4, 5], DEFAULT_DIMENSIONS))
        ]
    );
    assert_eq!(
        seen["refusals"]["empty"],
        json!({"status": 400, "param": "input", "code": "invalid_request"})
    );
    assert_eq!(
        seen["refusals"]["unknown"],
        json!({"status": 404, "param": "model", "code": "model_not_found"})
    );
    let sent = sim.requests("embed-a");
    assert_eq!(sent.len(), 3, "the refusals reached no upstream");
    for request in &sent {
        assert!(
            request.body.get("encoding_format").is_none(),
            "the gateway asks for floats: {}",
            request.body
        );
    }
}
