//! `POST /v1/embeddings` over raw HTTP against the simulator: served with the upstream's vectors
//! and the gateway's headers, fallback between providers of the same model and never to another
//! model, base64 and token arrays, bad bodies, quota, providers' quirks, chat kept apart, and
//! `/v1/models` listing embedding models apart.

use freerouter::api::embeddings::unpack_base64;
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::{
    Behavior, DEFAULT_DIMENSIONS, Simulator, embedding_of, token_embedding_of,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const EMBEDDINGS: &str = "context_window = 8192\ntags = [\"embeddings\"]";
/// The same model on two providers: one alias.
const SIM_EMBED: &str = "context_window = 8192\ntags = [\"embeddings\"]\naliases = [\"sim-embed\"]";
const OTHER_EMBED: &str =
    "context_window = 8192\ntags = [\"embeddings\"]\naliases = [\"other-embed\"]";

async fn embed(gateway: &TestGateway, body: &Value) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url("/v1/embeddings"))
        .json(body)
        .send()
        .await
        .expect("the gateway answers")
}

async fn error_of(response: reqwest::Response) -> Value {
    let body: Value = response.json().await.expect("an error body");
    body["error"].clone()
}

fn vectors(answer: &Value) -> Vec<Vec<f64>> {
    answer["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|item| {
            item["embedding"]
                .as_array()
                .expect("numbers")
                .iter()
                .map(|n| n.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// `embed-a` on pa (rank 1) and pc (rank 3) — one model, alias `sim-embed` — and another model,
/// `embed-b`, on pb between them.
async fn same_model_on_two_providers() -> (Simulator, Simulator, Simulator, TestGateway) {
    let (a, b, c) = (
        Simulator::start().await,
        Simulator::start().await,
        Simulator::start().await,
    );
    for sim in [&a, &c] {
        sim.model("embed-a");
    }
    b.model("embed-b");
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .provider("pc", &c)
        .route_with("pa", "embed-a", 1, SIM_EMBED)
        .route_with("pb", "embed-b", 2, OTHER_EMBED)
        .route_with("pc", "embed-a", 3, SIM_EMBED)
        .start()
        .await;
    (a, b, c, gateway)
}

#[tokio::test]
async fn an_embeddings_request_is_served_with_the_upstreams_vectors_and_the_gateway_headers() {
    let (sim, chat) = (Simulator::start().await, Simulator::start().await);
    sim.model("embed-a").response_model("embed-a-2026");
    chat.model("chat-model");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .provider("pc", &chat)
        .route("pc", "chat-model", 1)
        .route_with("pa", "embed-a", 2, EMBEDDINGS)
        .start()
        .await;
    let response = embed(
        &gateway,
        &json!({"model": "auto", "input": ["hello", "world"], "encoding_format": "float",
                "user": "u-1", "provider": {"order": ["paid"]}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(header(&response, "x-gateway-route"), "pa/embed-a");
    assert_eq!(header(&response, "x-gateway-provider"), "pa");
    assert_eq!(header(&response, "x-gateway-model"), "embed-a-2026");
    assert_eq!(header(&response, "x-gateway-attempts"), "1");
    assert_eq!(header(&response, "x-gateway-trail"), "pa/embed-a:ok");
    assert!(header(&response, "x-request-id").starts_with("req_"));
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        vectors(&answer),
        vec![
            embedding_of("embed-a", "hello", DEFAULT_DIMENSIONS),
            embedding_of("embed-a", "world", DEFAULT_DIMENSIONS)
        ]
    );
    assert_eq!(answer["model"], "embed-a-2026", "the upstream's own body");
    assert_eq!(answer["usage"]["prompt_tokens"], 2);
    let sent = &sim.requests("embed-a")[0];
    assert_eq!(
        sent.body,
        json!({"model": "embed-a", "input": ["hello", "world"], "user": "u-1"}),
        "no encoding_format (floats are the default everywhere) and no billing fields"
    );
    assert!(sent.path.ends_with("/v1/embeddings"));
    assert_eq!(chat.calls("chat-model"), 0);

    // No model at all is `auto` too.
    assert_eq!(
        embed(&gateway, &json!({"input": "again"})).await.status(),
        200
    );

    let store = gateway.gateway.store.clone();
    let started = Instant::now();
    let rows = loop {
        let rows = store.recent_request_logs(10).await.unwrap();
        if rows.len() >= 2 {
            break rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the log was not written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for row in &rows {
        assert_eq!(row.endpoint, "embeddings");
        assert_eq!(row.status, 200);
        assert_eq!(row.route_id.as_deref(), Some("pa/embed-a"));
        assert!(!row.stream);
    }
    assert!(
        rows.iter()
            .any(|r| r.tokens_in == Some(2) && r.requested_model == "auto")
    );
    let metrics = gateway.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("freerouter_requests_total{")
                && l.contains("endpoint=\"embeddings\"")
                && l.contains("outcome=\"ok\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_429_at_rank_1_falls_back_to_another_provider_of_the_same_model_never_to_another_model() {
    let (a, b, c, gateway) = same_model_on_two_providers().await;
    a.model("embed-a").then(Behavior::rate_limited(Some("30")));
    for model in ["auto", "sim-embed"] {
        let response = embed(&gateway, &json!({"model": model, "input": "fall back"})).await;
        assert_eq!(response.status(), 200, "{model}");
        assert_eq!(
            header(&response, "x-gateway-route"),
            "pc/embed-a",
            "{model}"
        );
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            vectors(&answer),
            vec![embedding_of("embed-a", "fall back", DEFAULT_DIMENSIONS)],
            "the same model's vectors"
        );
    }
    assert_eq!(a.calls("embed-a"), 1, "the rate-limited key rests");
    assert_eq!(c.calls("embed-a"), 2);
    assert_eq!(
        b.calls("embed-b"),
        0,
        "another model is never tried, though ranked between them"
    );
    // The same request once more shows the whole path in its trail.
    let fresh = same_model_on_two_providers().await;
    fresh
        .0
        .model("embed-a")
        .then(Behavior::rate_limited(Some("30")));
    let response = embed(&fresh.3, &json!({"input": "trail"})).await;
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "pa/embed-a:429,pc/embed-a:ok"
    );
    assert_eq!(header(&response, "x-gateway-attempts"), "2");
}

#[tokio::test]
async fn when_every_provider_of_the_model_is_limited_the_client_gets_429_not_another_models_vectors()
 {
    let (a, b, c, gateway) = same_model_on_two_providers().await;
    for sim in [&a, &c] {
        sim.model("embed-a")
            .always(Behavior::rate_limited(Some("30")));
    }
    let response = embed(&gateway, &json!({"model": "auto", "input": "x"})).await;
    assert_eq!(response.status(), 429);
    let wait: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((25..=31).contains(&wait), "Retry-After {wait}");
    let error = error_of(response).await;
    assert_eq!(error["code"], "quota_exhausted");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`sim-embed`"), "{message}");
    assert!(message.contains("another model"), "{message}");
    assert_eq!(error["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(b.calls("embed-b"), 0);
    // Asked again while both rest: refused at once, no upstream call.
    let again = embed(&gateway, &json!({"input": "x"})).await;
    assert_eq!(again.status(), 429);
    assert_eq!(a.calls("embed-a") + c.calls("embed-a"), 2);
    assert_eq!(b.calls("embed-b"), 0);
    // The other model is still served by name.
    let other = embed(&gateway, &json!({"model": "other-embed", "input": "x"})).await;
    assert_eq!(header(&other, "x-gateway-route"), "pb/embed-b");
}

#[tokio::test]
async fn when_every_provider_of_the_model_fails_the_client_gets_502_naming_it() {
    let (a, b, c, gateway) = same_model_on_two_providers().await;
    for sim in [&a, &c] {
        sim.model("embed-a")
            .always(Behavior::error(503, "overloaded", "try later"));
    }
    let response = embed(&gateway, &json!({"input": ["one", "two"]})).await;
    assert_eq!(response.status(), 502);
    let error = error_of(response).await;
    assert_eq!(error["code"], "all_routes_failed");
    assert!(error["message"].as_str().unwrap().contains("`sim-embed`"));
    assert_eq!(b.calls("embed-b"), 0);
    // An answer without a vector for every input is no answer either.
    let (a, b, c, gateway) = same_model_on_two_providers().await;
    for sim in [&a, &c] {
        sim.model("embed-a").always(Behavior::Status {
            status: 200,
            body: json!({"object": "list", "data": [{"index": 0, "embedding": [0.5]}]}),
            headers: Vec::new(),
        });
    }
    let short = embed(&gateway, &json!({"input": ["one", "two"]})).await;
    assert_eq!(short.status(), 502);
    assert_eq!(b.calls("embed-b"), 0);
}

#[tokio::test]
async fn base64_vectors_are_the_upstreams_floats_packed_as_float32() {
    let sim = Simulator::start().await;
    sim.model("embed-a");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route_with("pa", "embed-a", 1, EMBEDDINGS)
        .start()
        .await;
    let input = json!(["alpha", "beta"]);
    let floats: Value = embed(&gateway, &json!({"input": input}))
        .await
        .json()
        .await
        .unwrap();
    let response = embed(
        &gateway,
        &json!({"input": input, "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "pa/embed-a");
    let packed: Value = response.json().await.unwrap();
    for (i, expected) in vectors(&floats).into_iter().enumerate() {
        let text = packed["data"][i]["embedding"]
            .as_str()
            .expect("a base64 string");
        let expected: Vec<f32> = expected.into_iter().map(|x| x as f32).collect();
        assert_eq!(unpack_base64(text).unwrap(), expected);
        assert_eq!(packed["data"][i]["index"], i);
    }
    assert_eq!(packed["usage"], floats["usage"]);
    for sent in sim.requests("embed-a") {
        assert!(sent.body.get("encoding_format").is_none(), "{}", sent.body);
    }
}

#[tokio::test]
async fn token_arrays_reach_the_upstream_as_sent() {
    let sim = Simulator::start().await;
    sim.model("embed-a");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route_with("pa", "embed-a", 1, EMBEDDINGS)
        .start()
        .await;
    let arrays: Value = embed(&gateway, &json!({"input": [[1, 2, 3], [40, 50]]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        vectors(&arrays),
        vec![
            token_embedding_of("embed-a", &[1, 2, 3], DEFAULT_DIMENSIONS),
            token_embedding_of("embed-a", &[40, 50], DEFAULT_DIMENSIONS)
        ]
    );
    assert_eq!(arrays["usage"]["prompt_tokens"], 5);
    let flat: Value = embed(&gateway, &json!({"input": [7, 8, 9]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        vectors(&flat),
        vec![token_embedding_of(
            "embed-a",
            &[7, 8, 9],
            DEFAULT_DIMENSIONS
        )],
        "a flat list of ids is one input"
    );
    let sent = sim.requests("embed-a");
    assert_eq!(sent[0].body["input"], json!([[1, 2, 3], [40, 50]]));
    assert_eq!(sent[1].body["input"], json!([7, 8, 9]));
}

#[tokio::test]
async fn bad_bodies_get_a_400_naming_the_field_and_reach_no_upstream() {
    let (sim, chat) = (Simulator::start().await, Simulator::start().await);
    sim.model("embed-a");
    chat.model("chat-model");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .provider("pc", &chat)
        .route_with("pa", "embed-a", 1, SIM_EMBED)
        .route("pc", "chat-model", 2)
        .start()
        .await;
    let too_many: Vec<&str> = vec!["x"; 2049];
    let cases = [
        (json!({}), "input"),
        (json!({"input": null}), "input"),
        (json!({"input": 5}), "input"),
        (json!({"input": ""}), "input"),
        (json!({"input": []}), "input"),
        (json!({"input": too_many}), "input"),
        (json!({"input": ["a", ""]}), "input[1]"),
        (json!({"input": ["a", [1]]}), "input[1]"),
        (json!({"input": [[1, -2]]}), "input[0]"),
        (json!({"input": [{"text": "a"}]}), "input[0]"),
        (json!({"input": "a", "model": 5}), "model"),
        (
            json!({"input": "a", "encoding_format": "hex"}),
            "encoding_format",
        ),
        (json!({"input": "a", "dimensions": 0}), "dimensions"),
        (json!({"input": "a", "dimensions": "256"}), "dimensions"),
        (json!({"input": "a", "user": 1}), "user"),
    ];
    for (body, param) in cases {
        let response = embed(&gateway, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = error_of(response).await;
        assert_eq!(error["param"], param, "{body}");
        assert_eq!(error["code"], "invalid_request", "{body}");
        assert_eq!(error["type"], "invalid_request_error", "{body}");
    }
    let not_json = gateway
        .http
        .post(gateway.url("/v1/embeddings"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    // Well-formed, but what no embedding route here serves.
    let dimensions = embed(&gateway, &json!({"input": "a", "dimensions": 256})).await;
    assert_eq!(dimensions.status(), 400);
    let error = error_of(dimensions).await;
    assert_eq!(
        (error["param"].as_str(), error["code"].as_str()),
        (Some("dimensions"), Some("unsupported_capability"))
    );
    for model in ["text-embedding-3-small", "chat-model"] {
        let response = embed(&gateway, &json!({"input": "a", "model": model})).await;
        assert_eq!(response.status(), 404, "{model}");
        let error = error_of(response).await;
        assert_eq!(error["code"], "model_not_found");
        assert_eq!(error["param"], "model");
        assert!(
            error["message"].as_str().unwrap().contains("sim-embed"),
            "{error}"
        );
    }
    assert_eq!(
        sim.total_calls() + chat.total_calls(),
        0,
        "nothing reached an upstream"
    );
}

/// A key's use of the provider this minute, from the admin API.
async fn minute_tokens(gateway: &TestGateway, provider: &str) -> u64 {
    let status: Value = gateway
        .get("/v1/gateway/providers/status")
        .await
        .json()
        .await
        .unwrap();
    status
        .as_array()
        .or_else(|| status["providers"].as_array())
        .expect("a list of providers")
        .iter()
        .find(|p| p["name"] == provider)
        .expect("the provider")["keys"][0]["usage"]["minute_tokens"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn quota_is_reserved_for_the_input_settled_with_the_upstreams_usage_and_429_when_spent() {
    let sim = Simulator::start().await;
    sim.model("embed-a");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route_with(
            "pa",
            "embed-a",
            1,
            "context_window = 8192\ntags = [\"embeddings\"]\nlimits = { rpm = 1 }",
        )
        .start()
        .await;
    assert_eq!(
        embed(&gateway, &json!({"input": "one"})).await.status(),
        200
    );
    let refused = embed(&gateway, &json!({"input": "two"})).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let error = error_of(refused).await;
    assert_eq!(error["code"], "quota_exhausted");
    assert!(error["message"].as_str().unwrap().contains("`embed-a`"));
    assert_eq!(sim.calls("embed-a"), 1, "no call beyond the key's rpm");

    // 120 characters of three bytes: the gateway reserves 90 tokens (a token per 4 bytes), the
    // upstream counts 30 (a token per 4 characters) — 30 is what stays spent.
    let sim = Simulator::start().await;
    sim.model("embed-a");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .route_with(
            "pa",
            "embed-a",
            1,
            "context_window = 8192\ntags = [\"embeddings\"]\nlimits = { tpm = 150 }",
        )
        .start()
        .await;
    let wide = "日".repeat(120);
    let first = embed(&gateway, &json!({"input": wide})).await;
    assert_eq!(first.status(), 200);
    let usage: Value = first.json().await.unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 30);
    let started = Instant::now();
    loop {
        let spent = minute_tokens(&gateway, "pa").await;
        if spent == 30 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the reservation was not settled with the upstream's usage: {spent} tokens spent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 30 spent + 90 reserved fits 150; had the estimate stayed spent (90 + 90), it would not.
    let second = embed(&gateway, &json!({"input": wide})).await;
    assert_eq!(second.status(), 200, "{}", second.text().await.unwrap());
    assert_eq!(sim.calls("embed-a"), 2);
}

#[tokio::test]
async fn chat_requests_never_reach_an_embeddings_route() {
    let (sim, chat) = (Simulator::start().await, Simulator::start().await);
    sim.model("embed-a");
    chat.model("chat-model");
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .provider("pc", &chat)
        .route_with("pa", "embed-a", 1, SIM_EMBED)
        .route("pc", "chat-model", 2)
        .start()
        .await;
    for model in ["auto", "embed-a", "sim-embed"] {
        let response = gateway.chat(&ask(model, "hi")).await;
        assert_eq!(response.status(), 200, "{model}");
        assert_eq!(
            header(&response, "x-gateway-route"),
            "pc/chat-model",
            "{model}"
        );
    }
    let strict = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("x-freerouter-strict", "true")
        .json(&ask("sim-embed", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), 400);
    assert_eq!(error_of(strict).await["code"], "unsupported_capability");
    assert_eq!(sim.total_calls(), 0);
}

#[tokio::test]
async fn models_lists_embedding_models_apart_from_chat_ones() {
    let (sim, chat) = (Simulator::start().await, Simulator::start().await);
    let gateway = GatewayConfig::new()
        .provider("pa", &sim)
        .provider("pc", &chat)
        .route_with("pa", "embed-a", 1, SIM_EMBED)
        .route_with("pa", "embed-b", 2, OTHER_EMBED)
        .route("pc", "chat-model", 3)
        .start()
        .await;
    let list: Value = gateway.get("/v1/models").await.json().await.unwrap();
    let data = list["data"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = data
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("auto", "chat"),
            ("auto-fast", "chat"),
            ("auto-balanced", "chat"),
            ("pc/chat-model", "chat"),
            ("pa/embed-a", "embeddings"),
            ("pa/embed-b", "embeddings"),
        ]
    );
    let embed_a = &data[4];
    assert_eq!(embed_a["owned_by"], "pa");
    assert_eq!(embed_a["aliases"], json!(["sim-embed"]));
    assert_eq!(
        embed_a["default"], true,
        "what `auto` means on /v1/embeddings"
    );
    assert_eq!(data[5]["default"], false);
}

#[tokio::test]
async fn providers_get_embeddings_in_their_own_form() {
    let sim = Simulator::start().await;
    for model in [
        "@cf/baai/bge-m3",
        "nvidia/llama-nemotron-embed-1b-v2",
        "codestral-embed",
        "embed-v4.0",
    ] {
        sim.model(model);
    }
    let builtin = |name: &str, prefix: &str| {
        format!(
            "[providers.{name}]\nbase_url = \"{}\"\napi_keys = [\"{name}-key\"]",
            sim.url(prefix)
        )
    };
    let tagged = "context_window = 8192\ntags = [\"embeddings\", \"dimensions\"]";
    let gateway = GatewayConfig::new()
        .toml(&builtin(
            "cloudflare",
            "/client/v4/accounts/{account_id}/ai/v1",
        ))
        .toml(&builtin("nvidia", "/v1"))
        .toml(&builtin("mistral", "/v1"))
        .toml(&builtin("cohere", "/compatibility/v1"))
        .env_var("CLOUDFLARE_ACCOUNT_ID", "acc123")
        .route_with("cloudflare", "@cf/baai/bge-m3", 1, EMBEDDINGS)
        .route_with("nvidia", "nvidia/llama-nemotron-embed-1b-v2", 2, tagged)
        .route_with("mistral", "codestral-embed", 3, tagged)
        .route_with("cohere", "embed-v4.0", 4, EMBEDDINGS)
        .start()
        .await;
    let ask_model = |model: &str, extra: Value| {
        let mut body = json!({"model": model, "input": ["a text"], "user": "u-1"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (model, extra) in [
        ("@cf/baai/bge-m3", json!({})),
        (
            "nvidia/llama-nemotron-embed-1b-v2",
            json!({"dimensions": 384, "truncate": "END"}),
        ),
        ("codestral-embed", json!({"dimensions": 256})),
        ("embed-v4.0", json!({"input_type": "passage"})),
    ] {
        let response = embed(&gateway, &ask_model(model, extra)).await;
        assert_eq!(
            response.status(),
            200,
            "{model}: {}",
            response.text().await.unwrap()
        );
    }
    let sent = |model: &str| sim.requests(model).remove(0);
    let cloudflare = sent("@cf/baai/bge-m3");
    assert_eq!(
        cloudflare.path,
        "/client/v4/accounts/acc123/ai/v1/embeddings"
    );
    let nvidia = sent("nvidia/llama-nemotron-embed-1b-v2");
    assert_eq!(
        nvidia.body["input_type"], "query",
        "NVIDIA's own models need one"
    );
    assert_eq!(nvidia.body["truncate"], "END");
    assert_eq!(nvidia.body["dimensions"], 384);
    let mistral = sent("codestral-embed");
    assert_eq!(mistral.body["output_dimension"], 256);
    assert!(mistral.body.get("dimensions").is_none() && mistral.body.get("user").is_none());
    let cohere = sent("embed-v4.0");
    assert_eq!(cohere.path, "/compatibility/v1/embeddings");
    assert!(cohere.body.get("user").is_none(), "{}", cohere.body);
    assert!(
        cohere.body.get("input_type").is_none(),
        "NVIDIA's field reaches only NVIDIA"
    );
}
