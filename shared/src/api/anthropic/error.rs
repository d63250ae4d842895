//! Anthropic's error shape, `{"type":"error","error":{"type","message"},"request_id"}`, the
//! error type each status stands for, and why a Messages body was refused.

use serde_json::{Value, json};

/// Why a Messages request body was refused (400 `invalid_request_error`), naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidMessages {
    pub message: String,
    /// The offending field's path in the Anthropic body (`messages[2].content[0].type`).
    pub param: Option<String>,
}

impl InvalidMessages {
    pub(crate) fn at(param: impl Into<String>, message: impl Into<String>) -> Self {
        let param = param.into();
        Self {
            message: format!("{param}: {}", message.into()),
            param: Some(param),
        }
    }

    pub(crate) fn body(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: None,
        }
    }
}

/// The Anthropic error type for an HTTP status (as Anthropic's API documents them).
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        408 | 504 => "timeout_error",
        503 | 529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The error body for `status`.
pub fn error_body(status: u16, message: &str, request_id: Option<&str>) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type(status), "message": message},
        "request_id": request_id,
    })
}

/// An OpenAI-shaped error body (`{"error":{"message",…}}`) rewritten in Anthropic's shape; `None`
/// for a body in any other shape (already Anthropic's, or not an error).
pub fn from_openai_error(status: u16, body: &[u8], request_id: Option<&str>) -> Option<Value> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return None;
    }
    let message = value.pointer("/error/message")?.as_str()?;
    Some(error_body(status, message, request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_has_the_error_type_anthropic_documents() {
        let cases = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (529, "overloaded_error"),
            (504, "timeout_error"),
            (422, "invalid_request_error"),
        ];
        for (status, kind) in cases {
            assert_eq!(error_type(status), kind, "{status}");
        }
    }

    #[test]
    fn an_openai_error_is_rewritten_and_an_anthropic_one_left_alone() {
        let openai = br#"{"error":{"message":"no key","type":"authentication_error","code":"invalid_api_key","param":null}}"#;
        let rewritten = from_openai_error(401, openai, Some("req_1")).unwrap();
        assert_eq!(
            rewritten,
            json!({"type":"error","error":{"type":"authentication_error","message":"no key"},"request_id":"req_1"})
        );
        let already = serde_json::to_vec(&rewritten).unwrap();
        assert_eq!(from_openai_error(401, &already, Some("req_1")), None);
        assert_eq!(from_openai_error(401, b"not json", None), None);
    }
}
