//! `POST …/embeddings`: count and record the call, apply the rate limits like a chat request (one
//! request, the input's tokens), draw its behaviour, answer with deterministic vectors.
//!
//! A vector depends only on the model id and the input (its text, or its token ids): the same
//! input gives the same vector on every call, another model gives another vector. It has
//! [`DEFAULT_DIMENSIONS`] numbers in [-1, 1] with three decimals, or `dimensions` if the request
//! says. Tokens are counted as in chat (a text's characters / 4, at least 1) or one per token id,
//! and `usage` reports exactly that. Inputs longer than the model's `context_window` are refused
//! with a 400 `context_length_exceeded`. Scripted `Status`, `HangBeforeHeaders` and
//! `MalformedJson` behaviours apply; the others answer normally.

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::behavior::Behavior;
use super::chat::{bearer_key, header_pairs};
use super::model::RecordedRequest;
use super::request;
use super::respond;
use super::state::SimState;
use super::stream::{self, Step};
use super::text;

/// Numbers in a vector when the request does not ask for `dimensions`.
pub const DEFAULT_DIMENSIONS: usize = 8;

/// Answers one embeddings request sent to `path`; counts it as served when the answer is 2xx.
pub(crate) async fn embeddings(
    state: SimState,
    path: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = handle(&state, path, headers, body).await;
    if response.status().is_success() {
        state.count_served();
    }
    response
}

/// One input, as the vector is computed from it.
#[derive(Clone, Debug, PartialEq)]
enum Input {
    Text(String),
    Tokens(Vec<u64>),
}

impl Input {
    fn tokens(&self) -> u64 {
        match self {
            Input::Text(text) => text::prompt_tokens(text.chars().count()),
            Input::Tokens(ids) => ids.len() as u64,
        }
    }

    fn key(&self) -> String {
        match self {
            Input::Text(text) => format!("text:{text}"),
            Input::Tokens(ids) => format!("tokens:{ids:?}"),
        }
    }
}

/// The inputs of a body, or why it has none the simulator takes.
fn inputs(body: &Value) -> Result<Vec<Input>, String> {
    let ids = |items: &[Value]| -> Option<Vec<u64>> { items.iter().map(Value::as_u64).collect() };
    match body.get("input") {
        Some(Value::String(text)) => Ok(vec![Input::Text(text.clone())]),
        Some(Value::Array(items)) if !items.is_empty() => {
            if let Some(tokens) = ids(items) {
                return Ok(vec![Input::Tokens(tokens)]);
            }
            items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Some(Input::Text(text.clone())),
                    Value::Array(tokens) => ids(tokens).map(Input::Tokens),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| "`input` holds an item that is neither text nor tokens".to_string())
        }
        _ => Err("`input` must be a string or a non-empty array".to_string()),
    }
}

async fn handle(state: &SimState, path: String, headers: HeaderMap, body: Bytes) -> Response {
    state.count_call();
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            let message = format!("We could not parse the JSON body of your request: {e}");
            return respond::error(StatusCode::BAD_REQUEST, "invalid_json", &message);
        }
    };
    let id = match request::model_id(&body) {
        Ok(id) => id.to_string(),
        Err(message) => {
            return respond::error(StatusCode::BAD_REQUEST, "invalid_request", &message);
        }
    };
    let Some(model) = state.find(&id) else {
        let message = format!("The model `{id}` does not exist");
        return respond::error(StatusCode::NOT_FOUND, "model_not_found", &message);
    };
    let parsed = inputs(&body);
    let dimensions = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_DIMENSIONS, |d| d as usize);
    let recorded = RecordedRequest {
        body,
        headers: header_pairs(&headers),
        path,
        at: Instant::now(),
    };
    model.record_call(recorded, state.recording());
    let inputs = match parsed {
        Ok(inputs) => inputs,
        Err(message) => {
            return respond::error(StatusCode::BAD_REQUEST, "invalid_request", &message);
        }
    };
    let prompt_tokens: u64 = inputs.iter().map(Input::tokens).sum();
    let mut grant = match state.admit(&bearer_key(&headers), &model, prompt_tokens, 0) {
        Ok(grant) => grant,
        Err(refusal) => return respond::limit_refusal(&refusal),
    };
    let plan = model.plan();
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    match &plan.behavior {
        Behavior::Status {
            status,
            body,
            headers,
        } => return respond::scripted(*status, body, headers),
        Behavior::HangBeforeHeaders => {
            state.until_shutdown().await;
            let cut = stream::body(vec![Step::Cut], state.clone());
            return respond::with_body(StatusCode::SERVICE_UNAVAILABLE, "application/json", cut);
        }
        Behavior::MalformedJson => {
            let broken = Body::from(r#"{"object": "list", "data": [{"embedding": [0.1,"#);
            return respond::with_body(StatusCode::OK, "application/json", broken);
        }
        _ => {}
    }
    if let Some(window) = plan.context_window
        && let Some(longest) = inputs.iter().map(Input::tokens).max()
        && longest > window
    {
        let message = format!(
            "This model's maximum context length is {window} tokens, however you requested \
             {longest} tokens in one input. Please reduce your input."
        );
        return respond::error(StatusCode::BAD_REQUEST, "context_length_exceeded", &message);
    }
    state.complete(&mut grant, 0);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            json!({"object": "embedding", "index": index, "embedding": vector(&id, input, dimensions)})
        })
        .collect();
    let answer = json!({
        "object": "list",
        "data": data,
        "model": plan.response_model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    });
    let mut response = respond::json(StatusCode::OK, &answer);
    respond::add_headers(
        &mut response,
        grant.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
    );
    response
}

/// The vector `model` gives `input`: `dimensions` numbers in [-1, 1], three decimals.
fn vector(model: &str, input: &Input, dimensions: usize) -> Vec<f64> {
    let seed = format!("{model}\u{0}{}", input.key());
    (0..dimensions)
        .map(|i| {
            let hash = fnv1a(format!("{seed}\u{0}{i}").as_bytes());
            ((hash % 2001) as f64 - 1000.0) / 1000.0
        })
        .collect()
}

/// The vector the simulator's `model` gives a text input (what a test expects to be served).
pub fn embedding_of(model: &str, text: &str, dimensions: usize) -> Vec<f64> {
    vector(model, &Input::Text(text.to_string()), dimensions)
}

/// The same for a token array.
pub fn token_embedding_of(model: &str, ids: &[u64], dimensions: usize) -> Vec<f64> {
    vector(model, &Input::Tokens(ids.to_vec()), dimensions)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{KeyLimits, Simulator};

    async fn embed(sim: &Simulator, body: Value) -> reqwest::Response {
        // Plain http only, but reqwest (rustls-no-provider) needs a provider to build a client.
        crate::harness::init_tls();
        reqwest::Client::new()
            .post(sim.url("/client/v4/accounts/ACC/ai/v1/embeddings"))
            .bearer_auth("sk-1")
            .json(&body)
            .send()
            .await
            .expect("the simulator answers")
    }

    #[tokio::test]
    async fn an_embeddings_request_gets_one_vector_per_input_its_usage_and_limits() {
        let sim = Simulator::start().await;
        sim.model("embed-a").limit(KeyLimits {
            rpm: Some(2),
            ..KeyLimits::default()
        });
        let response = embed(
            &sim,
            json!({"model": "embed-a", "input": ["hello", "world!!!"]}),
        )
        .await;
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .contains_key("x-ratelimit-remaining-requests")
        );
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["data"][1]["index"], 1);
        assert_eq!(
            answer["data"][1]["embedding"],
            json!(embedding_of("embed-a", "world!!!", 8))
        );
        assert_eq!(
            answer["usage"],
            json!({"prompt_tokens": 3, "total_tokens": 3})
        );
        let tokens = embed(
            &sim,
            json!({"model": "embed-a", "input": [[5, 6, 7]], "dimensions": 3}),
        )
        .await;
        let answer: Value = tokens.json().await.unwrap();
        assert_eq!(
            answer["data"][0]["embedding"],
            json!(token_embedding_of("embed-a", &[5, 6, 7], 3))
        );
        assert_eq!(answer["usage"]["prompt_tokens"], 3);
        let refused = embed(&sim, json!({"model": "embed-a", "input": "x"})).await;
        assert_eq!(refused.status(), 429);
        assert_eq!(sim.calls("embed-a"), 3);
        assert_eq!(sim.served(), 2);
    }

    #[test]
    fn vectors_depend_on_the_model_and_the_input_only() {
        let a = embedding_of("m-1", "hello", 8);
        assert_eq!(a.len(), 8);
        assert_eq!(a, embedding_of("m-1", "hello", 8));
        assert_ne!(a, embedding_of("m-2", "hello", 8));
        assert_ne!(a, embedding_of("m-1", "hello!", 8));
        assert!(a.iter().all(|x| (-1.0..=1.0).contains(x)));
        assert_ne!(
            token_embedding_of("m-1", &[1, 2], 4),
            token_embedding_of("m-1", &[2, 1], 4)
        );
    }

    #[test]
    fn inputs_of_every_shape_are_read() {
        let read = |v: Value| inputs(&json!({"input": v}));
        assert_eq!(read(json!("a")).unwrap(), vec![Input::Text("a".into())]);
        assert_eq!(
            read(json!([1, 2])).unwrap(),
            vec![Input::Tokens(vec![1, 2])]
        );
        assert_eq!(
            read(json!([[1], "b"])).unwrap(),
            vec![Input::Tokens(vec![1]), Input::Text("b".into())]
        );
        assert!(read(json!([])).is_err());
        assert!(read(json!([{"x": 1}])).is_err());
        assert!(read(json!(3)).is_err());
    }
}
