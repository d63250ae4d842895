//! What the router answers: the upstream's own body, and who served it.

use super::error::RouterError;
use crate::routing::Served;
use bytes::Bytes;
use serde_json::Value;

/// Who served a request (the gateway's `X-Gateway-*` headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedBy {
    /// The route that answered, e.g. `groq/llama-3.3-70b-versatile`.
    pub route_id: String,
    /// Its provider, e.g. `groq`.
    pub provider: String,
    /// The model the upstream says answered.
    pub model: String,
    /// How many upstream attempts the request took (1 when the first route answered).
    pub attempts: usize,
    /// Each attempt and its result: `groq/llama-3.3-70b:429,cerebras/qwen-3:ok`.
    pub trail: String,
}

impl ServedBy {
    pub(super) fn from_served(served: &Served) -> Self {
        Self {
            route_id: served.route_id.clone(),
            provider: served.provider.clone(),
            model: served.model.clone(),
            attempts: served.trail.attempts(),
            trail: served.trail.header_value(),
        }
    }

    /// Whether another route was tried before the one that answered.
    pub fn fell_back(&self) -> bool {
        self.attempts > 1
    }
}

/// A whole chat completion.
#[derive(Clone, Debug)]
pub struct ChatResponse {
    /// The upstream's own chat completion object (`choices`, `usage`, its `model`).
    pub body: Value,
    /// Who served it.
    pub served: ServedBy,
}

impl ChatResponse {
    pub(super) fn new(body: Bytes, served: Served) -> Result<Self, RouterError> {
        Ok(Self {
            body: parse(&body)?,
            served: ServedBy::from_served(&served),
        })
    }

    /// The first choice's text (`""` when it has none, e.g. only tool calls).
    pub fn text(&self) -> &str {
        self.body
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// An embeddings answer.
#[derive(Clone, Debug)]
pub struct EmbeddingsResponse {
    /// The upstream's own list object (`data[].embedding`, `usage`); vectors packed as base64
    /// strings when the request asked for `encoding_format: "base64"`.
    pub body: Value,
    /// Who served it.
    pub served: ServedBy,
    /// The embedding model the vectors are of (every fallback stays within it).
    pub model: String,
}

impl EmbeddingsResponse {
    pub(super) fn new(body: Bytes, served: Served, model: String) -> Result<Self, RouterError> {
        Ok(Self {
            body: parse(&body)?,
            served: ServedBy::from_served(&served),
            model,
        })
    }

    /// The vectors as floats, in input order (empty for base64 answers).
    pub fn vectors(&self) -> Vec<Vec<f64>> {
        let Some(data) = self.body.get("data").and_then(Value::as_array) else {
            return Vec::new();
        };
        data.iter()
            .filter_map(|item| item.get("embedding").and_then(Value::as_array))
            .map(|v| v.iter().filter_map(Value::as_f64).collect())
            .collect()
    }
}

fn parse(body: &[u8]) -> Result<Value, RouterError> {
    serde_json::from_slice(body).map_err(|error| RouterError::Malformed {
        message: format!("the upstream's answer is not JSON: {error}"),
    })
}
