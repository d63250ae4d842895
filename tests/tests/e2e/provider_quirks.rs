//! Every built-in provider against the simulator, its base URL overridden to the simulator with the
//! provider's real path prefix: the path and auth header each one is sent, and its quirk.

use freerouter::catalog::resolve_providers;
use freerouter::config::{Secret, Settings};
use freerouter::providers::{adapter_for, http_client, list_models};
use freerouter_tests::harness::{
    GatewayConfig, TestGateway, ask, ask_stream, header, sse_data, streamed_text,
};
use freerouter_tests::simulator::{Behavior, RecordedRequest, Simulator};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// `[providers.NAME]` pointing a built-in at `base_url` with one key.
fn builtin_override(name: &str, base_url: &str, key: &str) -> String {
    format!("[providers.{name}]\nbase_url = \"{base_url}\"\napi_keys = [\"{key}\"]")
}

fn headers_named<'a>(request: &'a RecordedRequest, name: &str) -> Vec<&'a str> {
    request
        .headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Exactly one `Authorization: Bearer KEY`.
fn assert_bearer(request: &RecordedRequest, key: &str) {
    assert_eq!(
        headers_named(request, "authorization"),
        vec![format!("Bearer {key}").as_str()],
        "the provider's key, as a bearer token"
    );
}

/// Starts a gateway whose only route is the built-in `provider`'s `model`, the provider's base URL
/// the simulator's `prefix`; sends one request and checks where it went and with which key.
async fn served_at(provider: &str, prefix: &str, model: &str) -> (Simulator, RecordedRequest) {
    let sim = Simulator::start().await;
    sim.model(model);
    let key = format!("{provider}-test-key");
    let gateway = GatewayConfig::new()
        .toml(&builtin_override(provider, &sim.url(prefix), &key))
        .route(provider, model, 1)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        header(&response, "x-gateway-route"),
        format!("{provider}/{model}")
    );
    assert_eq!(header(&response, "x-gateway-provider"), provider);
    let requests = sim.requests(model);
    assert_eq!(requests.len(), 1);
    let sent = requests[0].clone();
    assert_eq!(sent.path, format!("{prefix}/chat/completions"));
    assert_eq!(sent.body["model"], model);
    assert_bearer(&sent, &key);
    (sim, sent)
}

#[tokio::test]
async fn groq_is_called_at_openai_v1_with_its_key() {
    served_at("groq", "/openai/v1", "llama-3.3-70b-versatile").await;
}

#[tokio::test]
async fn groq_takes_its_key_from_groq_api_key() {
    let sim = Simulator::start().await;
    sim.model("llama-3.1-8b-instant");
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.groq]\nbase_url = \"{}\"",
            sim.url("/openai/v1")
        ))
        .env_var("GROQ_API_KEY", "gsk-from-env")
        .route("groq", "llama-3.1-8b-instant", 1)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200);
    assert_bearer(&sim.requests("llama-3.1-8b-instant")[0], "gsk-from-env");
}

#[tokio::test]
async fn gemini_is_sent_the_model_without_the_models_prefix() {
    let sim = Simulator::start().await;
    sim.model("gemini-2.5-flash").answer("from gemini");
    let gateway = GatewayConfig::new()
        .toml(&builtin_override(
            "gemini",
            &sim.url("/v1beta/openai"),
            "gemini-test-key",
        ))
        .route("gemini", "models/gemini-2.5-flash", 1)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        header(&response, "x-gateway-route"),
        "gemini/models/gemini-2.5-flash"
    );
    let sent = &sim.requests("gemini-2.5-flash")[0];
    assert_eq!(sent.path, "/v1beta/openai/chat/completions");
    assert_eq!(sent.body["model"], "gemini-2.5-flash");
    assert_bearer(sent, "gemini-test-key");
}

#[tokio::test]
async fn gemini_listing_ids_lose_the_models_prefix() {
    let sim = Simulator::start().await;
    sim.model("models/gemini-2.5-flash");
    let config = GatewayConfig::new().toml(&builtin_override(
        "gemini",
        &sim.url("/v1beta/openai"),
        "gemini-test-key",
    ));
    let source = config.source(Path::new("unused.db"));
    let settings = Settings::load(&source).expect("valid settings");
    let providers = resolve_providers(&settings, &source);
    let gemini = &providers["gemini"];
    assert_eq!(gemini.adapter, "gemini");
    let adapter = adapter_for(&gemini.adapter).expect("the gemini adapter");
    let http = http_client(Duration::from_secs(5)).expect("an HTTP client");
    let listed = list_models(
        adapter.as_ref(),
        &http,
        gemini,
        gemini.keys.first(),
        Duration::from_secs(5),
    )
    .await
    .expect("the listing is read");
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, vec!["gemini-2.5-flash"]);
    assert_eq!(listed[0].1["id"], "models/gemini-2.5-flash", "entry kept");
}

#[tokio::test]
async fn openrouter_sends_its_identification_headers() {
    let (_sim, sent) = served_at(
        "openrouter",
        "/api/v1",
        "meta-llama/llama-3.3-70b-instruct:free",
    )
    .await;
    assert_eq!(headers_named(&sent, "http-referer").len(), 1);
    assert!(!headers_named(&sent, "http-referer")[0].is_empty());
    assert_eq!(headers_named(&sent, "x-title").len(), 1);
    assert!(!headers_named(&sent, "x-title")[0].is_empty());
}

#[tokio::test]
async fn cohere_is_called_at_compatibility_v1_without_parallel_tool_calls() {
    let sim = Simulator::start().await;
    let model = "command-a-03-2025";
    sim.model(model);
    let gateway = GatewayConfig::new()
        .toml(&builtin_override(
            "cohere",
            &sim.url("/compatibility/v1"),
            "co-test-key",
        ))
        .route_with(
            "cohere",
            model,
            1,
            "context_window = 100000\ntags = [\"tools\"]",
        )
        .start()
        .await;
    let tool =
        json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}});
    let mut body = ask("auto", "call f");
    body["tools"] = json!([tool]);
    body["parallel_tool_calls"] = json!(false);
    body["temperature"] = json!(0.2);
    let response = gateway.chat(&body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let sent = &sim.requests(model)[0];
    assert_eq!(sent.path, "/compatibility/v1/chat/completions");
    assert_bearer(sent, "co-test-key");
    assert!(
        sent.body.get("parallel_tool_calls").is_none(),
        "{}",
        sent.body
    );
    assert_eq!(sent.body["tools"], json!([tool]), "the rest is kept");
    assert_eq!(sent.body["temperature"], 0.2);
}

const CLOUDFLARE_MODEL: &str = "@cf/meta/llama-3.3-70b-instruct-fp8-fast";

fn cloudflare_config(sim: &Simulator) -> GatewayConfig {
    GatewayConfig::new()
        .toml(&builtin_override(
            "cloudflare",
            &sim.url("/client/v4/accounts/{account_id}/ai/v1"),
            "cf-test-token",
        ))
        .route_with(
            "cloudflare",
            CLOUDFLARE_MODEL,
            1,
            "context_window = 100000\ntags = [\"tools\"]",
        )
}

#[tokio::test]
async fn cloudflare_puts_the_account_in_the_path_and_never_sends_null_content() {
    let sim = Simulator::start().await;
    sim.model(CLOUDFLARE_MODEL);
    let gateway = cloudflare_config(&sim)
        .env_var("CLOUDFLARE_ACCOUNT_ID", "acc123")
        .start()
        .await;
    let call = json!({"id": "call_1", "type": "function",
        "function": {"name": "get_time", "arguments": "{}"}});
    let body = json!({
        "model": "auto",
        "tools": [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
        ],
    });
    let response = gateway.chat(&body).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let sent = &sim.requests(CLOUDFLARE_MODEL)[0];
    assert_eq!(
        sent.path,
        "/client/v4/accounts/acc123/ai/v1/chat/completions"
    );
    assert_bearer(sent, "cf-test-token");
    let assistant = &sent.body["messages"][1];
    assert_eq!(assistant["content"], "", "null content is sent as \"\"");
    assert_eq!(assistant["tool_calls"], json!([call]), "the rest is kept");
    assert_eq!(sent.body["messages"][2]["content"], "12:00");
}

#[tokio::test]
async fn cloudflare_without_an_account_id_is_unusable() {
    let sim = Simulator::start().await;
    sim.model(CLOUDFLARE_MODEL);
    let gateway = cloudflare_config(&sim).start().await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_routes_available", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("CLOUDFLARE_ACCOUNT_ID")),
        "the message names the missing variable: {body}"
    );
    assert_eq!(sim.total_calls(), 0);
}

/// An answer long enough to be cut after a few chunks.
const MISTRAL_ANSWER: &str =
    "Mistral answers in several words so that a cut stream leaves a clear partial answer behind.";

#[tokio::test]
async fn mistral_continues_a_cut_stream_with_a_prefix_prefill() {
    let sim = Simulator::start().await;
    let (first, second) = ("mistral-large-latest", "mistral-small-latest");
    sim.model(first)
        .answer(MISTRAL_ANSWER)
        .then(Behavior::CutAfter { chunks: 3 });
    sim.model(second).answer(MISTRAL_ANSWER);
    let gateway = GatewayConfig::new()
        .toml(&builtin_override(
            "mistral",
            &sim.url("/v1"),
            "mistral-test-key",
        ))
        .route("mistral", first, 1)
        .route("mistral", second, 2)
        .start()
        .await;
    let response = gateway.chat(&ask_stream("auto", "tell me")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-route"),
        format!("mistral/{first}")
    );
    let events = sse_data(response).await;
    assert_eq!(streamed_text(&events), MISTRAL_ANSWER, "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let mut requests: Vec<RecordedRequest> = sim
        .requests(first)
        .into_iter()
        .chain(sim.requests(second))
        .collect();
    requests.sort_by_key(|r| r.at);
    assert!(requests.len() >= 2, "a rescue request was sent");
    for request in &requests {
        assert_eq!(request.path, "/v1/chat/completions");
        assert_bearer(request, "mistral-test-key");
    }
    let rescue = &requests[1].body;
    let last = rescue["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["role"], "assistant", "{rescue}");
    assert_eq!(last["prefix"], true, "Mistral's prefill flag: {rescue}");
    let partial = last["content"].as_str().unwrap_or_default();
    assert!(
        !partial.is_empty() && MISTRAL_ANSWER.starts_with(partial),
        "the partial answer: {partial:?}"
    );
}

#[tokio::test]
async fn zai_content_safety_refusal_reaches_the_client_without_fallback() {
    let sim = Simulator::start().await;
    let refusal = json!({"error": {"code": "1301", "message": "unsafe content"}});
    sim.model("glm-4.5-flash").then(Behavior::Status {
        status: 400,
        body: refusal.clone(),
        headers: Vec::new(),
    });
    sim.model("other");
    let gateway = GatewayConfig::new()
        .toml(&builtin_override(
            "zai",
            &sim.url("/api/paas/v4"),
            "zai-test-key",
        ))
        .route("zai", "glm-4.5-flash", 1)
        .provider("lab", &sim)
        .route("lab", "other", 2)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "something unsafe")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "zai/glm-4.5-flash:content_policy"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, refusal, "the upstream's own error");
    assert_eq!(sim.calls("other"), 0, "no fallback after a safety refusal");
    let sent = &sim.requests("glm-4.5-flash")[0];
    assert_eq!(sent.path, "/api/paas/v4/chat/completions");
    assert_bearer(sent, "zai-test-key");
}

#[tokio::test]
async fn ollama_cloud_403_moves_on_without_invalidating_the_key() {
    let sim = Simulator::start().await;
    let (premium, free) = ("gpt-oss:120b", "gpt-oss:20b");
    sim.model(premium).always(Behavior::Status {
        status: 403,
        body: json!({"error": "this model requires a subscription, upgrade for access"}),
        headers: Vec::new(),
    });
    sim.model(free).answer("free answer");
    let gateway = GatewayConfig::new()
        .toml(&builtin_override(
            "ollama-cloud",
            &sim.url("/v1"),
            "ollama-test-key",
        ))
        .route("ollama-cloud", premium, 1)
        .route("ollama-cloud", free, 2)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        header(&response, "x-gateway-route"),
        format!("ollama-cloud/{free}")
    );
    assert_eq!(sim.calls(premium), 1);
    let sent = &sim.requests(free)[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_bearer(sent, "ollama-test-key");
    let key_id = Secret::new("ollama-test-key").fingerprint();
    assert!(
        !gateway.gateway.state.engine.health.key_invalid(
            "ollama-cloud",
            &key_id,
            freerouter::time::now_ms()
        ),
        "a subscription-only model says nothing about the key"
    );
    // The same key still serves the provider's other route.
    let response = gateway.chat(&ask("auto", "again")).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        header(&response, "x-gateway-route"),
        format!("ollama-cloud/{free}")
    );
    assert_eq!(sim.calls(free), 2);
}

#[tokio::test]
async fn github_models_is_called_at_inference() {
    served_at("github", "/inference", "openai/gpt-4.1").await;
}

#[tokio::test]
async fn mistral_is_called_at_v1() {
    served_at("mistral", "/v1", "mistral-small-latest").await;
}

#[tokio::test]
async fn cerebras_is_called_at_v1() {
    served_at("cerebras", "/v1", "llama-3.3-70b").await;
}

#[tokio::test]
async fn sambanova_is_called_at_v1() {
    served_at("sambanova", "/v1", "Meta-Llama-3.3-70B-Instruct").await;
}

#[tokio::test]
async fn nvidia_is_called_at_v1() {
    served_at("nvidia", "/v1", "meta/llama-3.3-70b-instruct").await;
}

#[tokio::test]
async fn huggingface_is_called_at_v1() {
    served_at("huggingface", "/v1", "meta-llama/Llama-3.3-70B-Instruct").await;
}

#[tokio::test]
async fn ollama_cloud_is_called_at_v1() {
    served_at("ollama-cloud", "/v1", "gpt-oss:120b").await;
}

#[tokio::test]
async fn zai_is_called_at_api_paas_v4() {
    served_at("zai", "/api/paas/v4", "glm-4.5-flash").await;
}

#[tokio::test]
async fn local_ollama_is_keyless_once_its_base_url_is_set() {
    let sim = Simulator::start().await;
    sim.model("llama3.2").answer("local answer");
    let gateway: TestGateway = GatewayConfig::new()
        .env_var("OLLAMA_BASE_URL", &sim.base_url())
        .route("ollama", "llama3.2", 1)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(header(&response, "x-gateway-route"), "ollama/llama3.2");
    let sent = &sim.requests("llama3.2")[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert!(
        headers_named(sent, "authorization").is_empty(),
        "no key is sent to local Ollama"
    );
}

#[tokio::test]
async fn local_ollama_is_unused_without_its_base_url() {
    let sim = Simulator::start().await;
    sim.model("llama3.2");
    let gateway = GatewayConfig::new()
        .route("ollama", "llama3.2", 1)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_routes_available", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("OLLAMA_BASE_URL")),
        "{body}"
    );
    assert_eq!(sim.total_calls(), 0);
}
