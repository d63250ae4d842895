//! Upstream failures, classified so the routing engine can decide what each one means.

use super::RateLimitInfo;
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
    /// The model does not exist (404, 410, or a 400 that says so).
    NotFound,
    ContextLength,
    ContentPolicy,
    /// 401/403.
    Auth,
    /// 402.
    PaymentRequired,
    /// 413 (over a per-minute token limit).
    TooLarge,
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
}

impl UpstreamFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            body: None,
            rate: RateLimitInfo::default(),
        }
    }
}

/// The message and code in an error body, in the shapes providers use.
fn error_text(body: &[u8]) -> (String, String) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
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

/// Classifies a non-2xx answer.
pub fn classify_error_response(status: u16, body: Bytes, rate: RateLimitInfo) -> UpstreamFailure {
    let (message, code) = error_text(&body);
    let text = format!("{code} {message}").to_ascii_lowercase();
    let says_context = mentions(
        &text,
        &[
            "context_length",
            "context length",
            "context window",
            "maximum context",
            "prompt is too long",
            "too many tokens",
        ],
    );
    let says_not_found = mentions(
        &text,
        &[
            "model_not_found",
            "model not found",
            "does not exist",
            "no endpoints found",
            "unknown model",
            "invalid model",
            "model_decommissioned",
            "decommissioned",
        ],
    );
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
    let kind = match status {
        429 => FailureKind::RateLimited,
        500..=599 => FailureKind::Server,
        401 | 403 => FailureKind::Auth,
        402 => FailureKind::PaymentRequired,
        413 => FailureKind::TooLarge,
        404 | 410 => FailureKind::NotFound,
        _ if says_context => FailureKind::ContextLength,
        _ if says_not_found => FailureKind::NotFound,
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
    fn the_message_is_taken_from_the_usual_places() {
        let f = classify_error_response(
            400,
            Bytes::from_static(br#"{"errors":[{"message":"account id missing"}]}"#),
            RateLimitInfo::default(),
        );
        assert_eq!(f.message, "account id missing");
    }
}
