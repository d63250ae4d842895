//! The embeddings flow every adapter shares: send an embeddings request through the adapter's
//! hooks, read the whole answer within its bounds, and check it is an answer — one vector per
//! input — without building a tree of its numbers. The bytes themselves go to the client as they
//! came.

use super::answer::Usage;
use super::http::post;
use super::{
    FailureKind, HttpClient, ProviderAdapter, RateLimitInfo, UpstreamCall, UpstreamFailure,
    classify_error_response, read_bounded,
};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::borrow::Cow;

/// A 2xx embeddings answer that holds a vector for every input.
#[derive(Debug)]
pub struct EmbeddingsReply {
    /// The body exactly as received.
    pub body: Bytes,
    pub info: EmbeddingsInfo,
    pub rate: RateLimitInfo,
}

/// Sends one embeddings request (`call.body` holds `model` and the fields) for `inputs` inputs.
pub async fn send_embeddings(
    adapter: &dyn ProviderAdapter,
    http: &HttpClient,
    call: UpstreamCall<'_>,
    inputs: usize,
) -> Result<EmbeddingsReply, UpstreamFailure> {
    let now = call.now;
    send(adapter, http, call, inputs)
        .await
        .map_err(|failure| adapter.refine_failure(failure, now))
}

async fn send(
    adapter: &dyn ProviderAdapter,
    http: &HttpClient,
    mut call: UpstreamCall<'_>,
    inputs: usize,
) -> Result<EmbeddingsReply, UpstreamFailure> {
    let url = adapter.embeddings_url(call.provider);
    let mut body = std::mem::take(&mut call.body);
    adapter.prepare_embeddings_body(&mut body);
    let (mut response, rate) = post(
        adapter,
        http,
        &url,
        body.to_bytes(),
        "application/json",
        &call,
    )
    .await?;
    let body = read_bounded(&mut response, call.max_body_bytes, call.idle_timeout)
        .await
        .map_err(|kind| UpstreamFailure {
            rate: rate.clone(),
            ..UpstreamFailure::new(kind, "the answer could not be read whole")
        })?;
    match EmbeddingsInfo::parse(&body) {
        Some(info) if info.vectors == inputs => Ok(EmbeddingsReply { body, info, rate }),
        Some(info) if info.is_error && info.vectors == 0 => {
            Err(classify_error_response(502, body, rate))
        }
        Some(info) => Err(malformed(
            rate,
            format!(
                "the answer holds {} vectors for {inputs} inputs",
                info.vectors
            ),
        )),
        None => Err(malformed(rate, "the answer is not a JSON object".into())),
    }
}

fn malformed(rate: RateLimitInfo, message: String) -> UpstreamFailure {
    UpstreamFailure {
        rate,
        ..UpstreamFailure::new(FailureKind::Malformed, message)
    }
}

/// What an embeddings answer carries, besides its numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmbeddingsInfo {
    /// Items of `data` that hold an `embedding`.
    pub vectors: usize,
    pub is_error: bool,
    /// `prompt_tokens` (else `total_tokens`) as the input tokens; embeddings produce none.
    pub usage: Option<Usage>,
    /// The model the answer says embedded.
    pub model: Option<String>,
}

impl EmbeddingsInfo {
    /// Reads an answer; `None` when it is not a JSON object. The vectors' numbers are skipped,
    /// never stored.
    pub fn parse(body: &[u8]) -> Option<EmbeddingsInfo> {
        let text = std::str::from_utf8(body).ok()?;
        if !text.trim_start().starts_with('{') {
            return None;
        }
        if let Ok(view) = serde_json::from_str::<AnswerView<'_>>(text) {
            return Some(EmbeddingsInfo {
                vectors: view.data.map_or(0, |items| {
                    items.iter().filter(|i| i.embedding.is_some()).count()
                }),
                is_error: view.error.is_some(),
                usage: view.usage.as_ref().and_then(usage_of),
                model: view.model.map(Cow::into_owned),
            });
        }
        // Valid JSON of an unexpected shape (`data` not a list, say) is read as a tree.
        let value: Value = serde_json::from_str(text).ok()?;
        Some(EmbeddingsInfo {
            vectors: value
                .get("data")
                .and_then(Value::as_array)
                .map_or(0, |items| {
                    items
                        .iter()
                        .filter(|i| i.get("embedding").is_some_and(|e| !e.is_null()))
                        .count()
                }),
            is_error: value.get("error").is_some_and(|e| !e.is_null()),
            usage: value.get("usage").and_then(usage_of),
            model: value
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

fn usage_of(usage: &Value) -> Option<Usage> {
    let prompt_tokens = ["prompt_tokens", "total_tokens"]
        .iter()
        .find_map(|field| usage.get(*field).and_then(Value::as_u64))?;
    Some(Usage {
        prompt_tokens,
        completion_tokens: 0,
    })
}

#[derive(Deserialize)]
struct AnswerView<'a> {
    #[serde(default)]
    data: Option<Vec<ItemView>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ItemView {
    #[serde(default)]
    embedding: Option<IgnoredAny>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_counted_by_its_vectors_and_its_usage_read() {
        let body =
            br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]},
            {"object":"embedding","index":1,"embedding":"AAAAAA=="}],"model":"m-1",
            "usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        let info = EmbeddingsInfo::parse(body).unwrap();
        assert_eq!(info.vectors, 2);
        assert_eq!(info.model.as_deref(), Some("m-1"));
        assert_eq!(info.usage.map(|u| u.total()), Some(7));
        assert!(!info.is_error);
    }

    #[test]
    fn total_tokens_stands_in_for_missing_prompt_tokens_and_null_vectors_do_not_count() {
        let body = br#"{"data":[{"embedding":null},{"embedding":[1]}],"usage":{"total_tokens":3}}"#;
        let info = EmbeddingsInfo::parse(body).unwrap();
        assert_eq!(info.vectors, 1);
        assert_eq!(info.usage.map(|u| u.prompt_tokens), Some(3));
    }

    #[test]
    fn errors_odd_shapes_and_non_json_are_told_apart() {
        let error = EmbeddingsInfo::parse(br#"{"error":{"message":"no"}}"#).unwrap();
        assert!(error.is_error && error.vectors == 0);
        let odd = EmbeddingsInfo::parse(br#"{"data":{"embedding":[1]},"usage":5}"#).unwrap();
        assert_eq!(odd.vectors, 0);
        assert!(odd.usage.is_none());
        assert!(EmbeddingsInfo::parse(b"[1]").is_none());
        assert!(EmbeddingsInfo::parse(b"{nope").is_none());
    }
}
