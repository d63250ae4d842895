//! Upstream failures, classified so the routing engine can decide what each one means.

use super::RateLimitInfo;
use super::spent::{Spent, openai_wording};
use bytes::Bytes;

/// What went wrong with one upstream attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Could not connect (refused, DNS, TLS).
    Connect,
    /// The connection broke before a complete answer.
    Reset,
    /// No response headers in time.
    HeaderTimeout,
    /// Headers, but no first token in time.
    FirstTokenTimeout,
    /// A body or stream went silent too long.
    StreamIdle,
    RateLimited,
    /// 5xx.
    Server,
    /// The model does not exist (404, 410, or a structured model-not-found code).
    NotFound,
    /// The route cannot take this request (a capability it lacks): the next route may.
    Unsupported,
    /// A structured context-length refusal (`context_length_exceeded`, or a provider's documented
    /// wording at the start of its message).
    ContextLength,
    /// A moderation or safety refusal, 400 or 403: the request's own doing.
    ContentPolicy,
    /// 401, or a 403 that is not a moderation refusal.
    Auth,
    /// 402.
    PaymentRequired,
    /// 413: this request is too large for the route (e.g. over its per-minute token limit).
    TooLarge,
    /// A 3xx: redirects are never followed (they would carry the key elsewhere).
    Redirect,
    EmptyCompletion,
    /// A 2xx whose body is not the JSON or SSE it should be.
    Malformed,
    /// An answer larger than the configured bound.
    BodyTooLarge,
    /// Any other 4xx: the request itself is wrong.
    ClientError,
}

impl FailureKind {
    /// A low-cardinality label for metrics and trails.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Reset => "reset",
            FailureKind::HeaderTimeout => "header_timeout",
            FailureKind::FirstTokenTimeout => "first_token_timeout",
            FailureKind::StreamIdle => "stream_idle",
            FailureKind::RateLimited => "429",
            FailureKind::Server => "5xx",
            FailureKind::NotFound => "not_found",
            FailureKind::Unsupported => "unsupported",
            FailureKind::Redirect => "redirect",
            FailureKind::ContextLength => "context_length",
            FailureKind::ContentPolicy => "content_policy",
            FailureKind::Auth => "auth",
            FailureKind::PaymentRequired => "402",
            FailureKind::TooLarge => "413",
            FailureKind::EmptyCompletion => "empty",
            FailureKind::Malformed => "malformed",
            FailureKind::BodyTooLarge => "too_large",
            FailureKind::ClientError => "4xx",
        }
    }
}

/// A failed attempt, with what the upstream said.
#[derive(Clone, Debug)]
pub struct UpstreamFailure {
    pub kind: FailureKind,
    pub status: Option<u16>,
    /// The upstream's message (or ours), for logs and the client.
    pub message: String,
    /// The upstream's raw error body, returned as-is when the client gets it.
    pub body: Option<Bytes>,
    pub rate: RateLimitInfo,
    /// The window a context-length refusal states, when its documented form gives one.
    pub stated_window: Option<u64>,
    /// Which quota a refusal says is spent, when its form says (set by the adapter that knows
    /// the provider's form; OpenAI's wording is read for every 429).
    pub spent: Option<Spent>,
}

impl UpstreamFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            body: None,
            rate: RateLimitInfo::default(),
            stated_window: None,
            spent: None,
        }
    }

    /// The error body as JSON, when it is (the first element when it is an array, as Gemini's
    /// OpenAI-compatible endpoint answers).
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(self.body.as_deref()?)
            .ok()
            .map(unwrap_array)
    }
}

/// `[{"error":…}]` → `{"error":…}`.
fn unwrap_array(json: serde_json::Value) -> serde_json::Value {
    match json {
        serde_json::Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    }
}

/// The message and code in an error body, in the shapes providers use.
fn error_text(body: &[u8]) -> (String, String) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body).map(unwrap_array) else {
        return (
            String::from_utf8_lossy(body).chars().take(500).collect(),
            String::new(),
        );
    };
    let error = json.get("error").unwrap_or(&json);
    let message = error
        .get("message")
        .or_else(|| json.pointer("/errors/0/message"))
        .or_else(|| json.get("detail"))
        .or_else(|| json.get("message"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .or_else(|| error.as_str().map(str::to_string))
        .unwrap_or_default();
    let code = [error.get("code"), error.get("type"), json.get("code")]
        .into_iter()
        .flatten()
        .map(|c| match c {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    (message, code)
}

fn mentions(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| haystack.contains(n))
}

/// Whether one of the error's structured codes (`error.code`, `error.type`, `code`) is one of these.
fn has_code(code: &str, codes: &[&str]) -> bool {
    code.split_whitespace()
        .any(|c| codes.iter().any(|known| c.eq_ignore_ascii_case(known)))
}

/// The documented wordings of context-length refusals, as their messages *begin* (so text a
/// client made the upstream echo back, inside an invalid-value message, is not one), each with
/// the phrase the window's number follows.
const CONTEXT_FORMS: &[(&str, &str)] = &[
    // OpenAI, vLLM-served providers (Cerebras, SambaNova, NVIDIA, …)
    (
        "this model's maximum context length is",
        "maximum context length is",
    ),
    // OpenRouter
    (
        "this endpoint's maximum context length is",
        "maximum context length is",
    ),
    // Gemini
    (
        "the input token count",
        "maximum number of tokens allowed (",
    ),
    // Anthropic-style
    ("prompt is too long:", " > "),
    // Mistral
    ("prompt contains", "too large for model with "),
];

/// `Some(stated window)` (`Some(None)` when unstated) for a structured context-length refusal.
fn context_refusal(code: &str, message: &str) -> Option<Option<u64>> {
    let lower = message.trim_start().to_ascii_lowercase();
    let form = CONTEXT_FORMS
        .iter()
        .find(|(start, _)| lower.starts_with(start));
    if let Some((_, before_number)) = form {
        let window = lower
            .find(before_number)
            .and_then(|at| number_at(&lower[at + before_number.len()..]));
        return Some(window);
    }
    if has_code(code, &["context_length_exceeded"]) {
        // The code is structured; a number is only trusted in a documented wording.
        return Some(None);
    }
    None
}

/// The number at the start of `text` ("8192", "4,096"), if any.
fn number_at(text: &str) -> Option<u64> {
    let digits: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Classifies a non-2xx answer. Shared state changes hang on this, so a kind that marks a key or
/// route comes only from a status or a structured code, never from words that might be the
/// client's own text echoed back.
pub fn classify_error_response(status: u16, body: Bytes, rate: RateLimitInfo) -> UpstreamFailure {
    let (message, code) = error_text(&body);
    let text = format!("{code} {message}").to_ascii_lowercase();
    let says_policy = mentions(
        &text,
        &[
            "content_policy",
            "content policy",
            "content_filter",
            "content management policy",
            "safety",
            "flagged",
            "moderation",
        ],
    );
    let model_not_found = has_code(
        &code,
        &[
            "model_not_found",
            "model_decommissioned",
            "invalid_model",
            "model_not_available",
        ],
    );
    let context = context_refusal(&code, &message);
    let spent = if status == 429 {
        openai_wording(&message)
    } else {
        None
    };
    let kind = match status {
        300..=399 => FailureKind::Redirect,
        429 => FailureKind::RateLimited,
        500..=599 => FailureKind::Server,
        // A moderation refusal is the request's doing, not the key's.
        403 if says_policy => FailureKind::ContentPolicy,
        401 | 403 => FailureKind::Auth,
        402 => FailureKind::PaymentRequired,
        413 => FailureKind::TooLarge,
        404 | 410 => FailureKind::NotFound,
        _ if context.is_some() => FailureKind::ContextLength,
        _ if model_not_found => FailureKind::NotFound,
        _ if says_policy => FailureKind::ContentPolicy,
        _ => FailureKind::ClientError,
    };
    UpstreamFailure {
        kind,
        status: Some(status),
        message: if message.is_empty() {
            format!("upstream answered {status}")
        } else {
            message
        },
        body: Some(body),
        rate,
        stated_window: context.flatten(),
        spent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str) -> FailureKind {
        classify_error_response(
            status,
            Bytes::from(body.to_string()),
            RateLimitInfo::default(),
        )
        .kind
    }

    #[test]
    fn statuses_and_messages_map_to_their_kinds() {
        assert_eq!(kind(429, "{}"), FailureKind::RateLimited);
        assert_eq!(kind(503, "oops"), FailureKind::Server);
        assert_eq!(kind(404, "{}"), FailureKind::NotFound);
        assert_eq!(kind(410, "gone"), FailureKind::NotFound);
        assert_eq!(
            kind(
                400,
                r#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#
            ),
            FailureKind::ContextLength
        );
        assert_eq!(
            kind(
                400,
                r#"{"error":{"message":"The model `x` does not exist","code":"model_not_found"}}"#
            ),
            FailureKind::NotFound
        );
        assert_eq!(kind(302, ""), FailureKind::Redirect);
        assert_eq!(
            kind(
                400,
                r#"{"error":{"message":"Your request was rejected by our safety system","code":"content_policy_violation"}}"#
            ),
            FailureKind::ContentPolicy
        );
        assert_eq!(
            kind(400, r#"{"errors":[{"message":"bad temperature"}]}"#),
            FailureKind::ClientError
        );
        assert_eq!(kind(401, "{}"), FailureKind::Auth);
        assert_eq!(kind(402, "{}"), FailureKind::PaymentRequired);
        assert_eq!(kind(413, "{}"), FailureKind::TooLarge);
    }

    #[test]
    fn words_the_client_could_have_provoked_mark_nothing() {
        // An invalid-value message echoing the client's text.
        let echo = r#"{"error":{"message":"Invalid value for 'stop': 'This model's maximum context length is 1 tokens; model does not exist'","code":"invalid_value"}}"#;
        assert_eq!(kind(400, echo), FailureKind::ClientError);
        // OpenRouter's moderation refusal is a 403 about the input, not the key.
        let flagged = r#"{"error":{"message":"Your chosen model requires moderation and your input was flagged for \"violence\"","code":403,"metadata":{"reasons":["violence"],"flagged_input":"..."}}}"#;
        assert_eq!(kind(403, flagged), FailureKind::ContentPolicy);
        assert_eq!(
            kind(403, r#"{"error":{"message":"Forbidden"}}"#),
            FailureKind::Auth
        );
    }

    #[test]
    fn a_documented_context_refusal_states_its_window() {
        let cases = [
            (
                r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens","code":null}}"#,
                Some(8192),
            ),
            (
                r#"{"error":{"message":"This endpoint's maximum context length is 131,072 tokens. However, you requested about 200000 tokens"}}"#,
                Some(131_072),
            ),
            (
                r#"{"error":{"message":"The input token count (1234567) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
                Some(1_048_576),
            ),
            (
                r#"{"error":{"message":"Please reduce the length of the messages or completion.","code":"context_length_exceeded"}}"#,
                None,
            ),
        ];
        for (body, window) in cases {
            let failure = classify_error_response(400, Bytes::from(body), RateLimitInfo::default());
            assert_eq!(failure.kind, FailureKind::ContextLength, "{body}");
            assert_eq!(failure.stated_window, window, "{body}");
        }
    }

    #[test]
    fn an_error_inside_a_json_array_is_read_like_any_other() {
        let gemini = r#"[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]"#;
        let f = classify_error_response(429, Bytes::from(gemini), RateLimitInfo::default());
        assert_eq!(f.kind, FailureKind::RateLimited);
        assert_eq!(f.message, "Resource has been exhausted (e.g. check quota).");
        assert_eq!(
            f.body_json().unwrap()["error"]["status"],
            "RESOURCE_EXHAUSTED"
        );
    }

    #[test]
    fn the_message_is_taken_from_the_usual_places() {
        let f = classify_error_response(
            400,
            Bytes::from_static(br#"{"errors":[{"message":"account id missing"}]}"#),
            RateLimitInfo::default(),
        );
        assert_eq!(f.message, "account id missing");
    }
}
