//! What a simulated model does with a call: answer normally, fail with a status, or misbehave on the wire.

use serde_json::{Value, json};

/// One way of answering a chat request. `Ok` answers normally; the others simulate upstream failures.
///
/// Stream-only failures (`BrokenSseEvent`, `NoDone`, the floods) answer a non-streaming request normally.
/// `CutAfter` and `StallAfter` on a non-streaming request send the headers and then cut or stall the body.
#[derive(Clone, Debug, PartialEq)]
pub enum Behavior {
    /// A normal answer.
    Ok,
    /// Answer with this status, JSON body and extra headers.
    Status {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    /// Never answer: no headers, no body, until the client gives up.
    HangBeforeHeaders,
    /// 200 with an unparseable body (non-stream) or only garbage events (stream).
    MalformedJson,
    /// A normal stream with one unparseable event after the first content chunk.
    BrokenSseEvent,
    /// The role chunk and `chunks` content chunks, then the connection ends abruptly.
    CutAfter { chunks: usize },
    /// The role chunk and `chunks` content chunks, then silence with the connection open.
    StallAfter { chunks: usize },
    /// A complete stream without `data: [DONE]`, the connection left open.
    NoDone,
    /// 200 with empty content.
    EmptyCompletion,
    /// One tool call instead of text, `finish_reason: "tool_calls"`.
    ToolCall { name: String, arguments: String },
    /// The normal answer's bytes (JSON or SSE) `piece_bytes` at a time, `interval_ms` apart: each
    /// piece arrives well within an idle timeout, the whole answer much later.
    SlowDrip {
        piece_bytes: usize,
        interval_ms: u64,
    },
    /// A 200 of about `bytes` bytes: a JSON completion whose content is that long (non-stream), or
    /// a stream of 64 KiB content events totalling that much (each event small, the whole not).
    HugeBody { bytes: usize },
    /// One content event of about `bytes` bytes after the role chunk (stream); a completion of that
    /// size (non-stream).
    HugeEvent { bytes: usize },
    /// The normal answer with a byte that is never UTF-8 (`0xFF`) at the end of its text.
    InvalidUtf8,
    /// The normal answer with one extra response header `bytes` long.
    OversizedHeaders { bytes: usize },
    /// A stream of `events` content events of one character each (`simulator::flood_text`).
    /// Stream-only.
    TinyEventFlood { events: usize },
    /// The normal stream with `events` chunks carrying nothing (an empty delta) after the role
    /// chunk, before any content. Stream-only.
    EmptyEventFlood { events: usize },
}

impl Behavior {
    /// An OpenAI-shaped error: `invalid_request_error` for 4xx, `server_error` otherwise.
    pub fn error(status: u16, code: &str, message: &str) -> Behavior {
        Behavior::Status {
            status,
            body: error_body(status, code, message),
            headers: Vec::new(),
        }
    }

    /// A 429 `rate_limit_exceeded`, with a `retry-after` header when given.
    pub fn rate_limited(retry_after: Option<&str>) -> Behavior {
        let b = Behavior::error(
            429,
            "rate_limit_exceeded",
            "Rate limit reached for requests. Please try again later.",
        );
        match retry_after {
            Some(value) => b.with_header("retry-after", value),
            None => b,
        }
    }

    /// Gemini's 429 `RESOURCE_EXHAUSTED` (a JSON array, no headers) naming the window in
    /// `quota_id` (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`), the limit in
    /// `quota_value` (0: the model is not in the key's tier) and `retryDelay` (`"37s"`).
    pub fn gemini_exhausted(quota_id: &str, quota_value: u64, retry_delay: &str) -> Behavior {
        Behavior::Status {
            status: 429,
            body: super::dialect::gemini_exhausted(quota_id, quota_value, retry_delay),
            headers: Vec::new(),
        }
    }

    /// OpenRouter's 429 `free-models-per-day`, its `X-RateLimit-*` (reset at `reset_epoch_ms`)
    /// copied into `error.metadata.headers`, and sent as headers too when `with_headers`.
    pub fn openrouter_free_per_day(reset_epoch_ms: u64, with_headers: bool) -> Behavior {
        let copied = json!({"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset_epoch_ms.to_string()});
        let headers = if with_headers {
            copied
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        } else {
            Vec::new()
        };
        Behavior::Status {
            status: 429,
            body: json!({"error": {"message": "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
                "code": 429, "metadata": {"headers": copied, "provider_name": null}}, "user_id": "user_sim"}),
            headers,
        }
    }

    /// Adds a response header to a `Status` behaviour; other behaviours are returned unchanged.
    pub fn with_header(self, name: &str, value: &str) -> Behavior {
        match self {
            Behavior::Status {
                status,
                body,
                mut headers,
            } => {
                headers.push((name.to_string(), value.to_string()));
                Behavior::Status {
                    status,
                    body,
                    headers,
                }
            }
            other => other,
        }
    }
}

/// `{"error":{"message","type","code","param":null}}` with the type derived from the status.
pub(crate) fn error_body(status: u16, code: &str, message: &str) -> Value {
    let kind = if (400..500).contains(&status) {
        "invalid_request_error"
    } else {
        "server_error"
    };
    json!({"error": {"message": message, "type": kind, "code": code, "param": null}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_typed_by_their_status_class() {
        let Behavior::Status { body, .. } = Behavior::error(503, "overloaded", "busy") else {
            panic!("error() must build a Status");
        };
        assert_eq!(body["error"]["type"], "server_error");
        assert_eq!(body["error"]["code"], "overloaded");
        assert_eq!(body["error"]["param"], Value::Null);
        assert_eq!(
            error_body(404, "x", "y")["error"]["type"],
            "invalid_request_error"
        );
    }

    #[test]
    fn rate_limited_carries_retry_after_only_when_given() {
        let with = Behavior::rate_limited(Some("2"));
        let Behavior::Status {
            status, headers, ..
        } = with
        else {
            panic!("rate_limited() must build a Status");
        };
        assert_eq!(status, 429);
        assert_eq!(headers, vec![("retry-after".to_string(), "2".to_string())]);
        let Behavior::Status { headers, .. } = Behavior::rate_limited(None) else {
            panic!("rate_limited() must build a Status");
        };
        assert!(headers.is_empty());
    }

    #[test]
    fn with_header_leaves_non_status_behaviours_alone() {
        assert_eq!(Behavior::Ok.with_header("a", "b"), Behavior::Ok);
    }
}
