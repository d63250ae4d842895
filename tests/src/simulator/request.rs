//! The parts of a chat request the simulator acts on, read from the JSON body at the boundary.

use serde_json::Value;

use super::text;

/// What the simulator needs to know about one `POST /v1/chat/completions` body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChatRequest {
    pub stream: bool,
    pub include_usage: bool,
    /// Characters of all message contents (text parts of array contents included).
    pub prompt_chars: usize,
    /// `max_tokens`, else `max_completion_tokens`, else 0.
    pub max_tokens: u64,
    /// The text of the last message when it is an assistant message (a continuation request).
    pub prefill: Option<String>,
}

/// The `model` field, or why the body has none.
pub(crate) fn model_id(body: &Value) -> Result<&str, String> {
    if !body.is_object() {
        return Err("the request body must be a JSON object".to_string());
    }
    match body.get("model") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err("you must provide a model parameter".to_string()),
    }
}

impl ChatRequest {
    /// Reads the fields the simulator uses; `Err` holds a message for a 400.
    pub(crate) fn parse(body: &Value) -> Result<ChatRequest, String> {
        let messages = match body.get("messages") {
            Some(Value::Array(messages)) => messages,
            _ => return Err("`messages` must be an array".to_string()),
        };
        let prompt_chars = messages
            .iter()
            .filter_map(|m| m.get("content"))
            .map(|content| content_text(content).map_or(0, |t| t.chars().count()))
            .sum();
        let prefill = messages
            .last()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
            .and_then(|m| m.get("content"))
            .and_then(content_text);
        let max_tokens = ["max_tokens", "max_completion_tokens"]
            .iter()
            .find_map(|field| body.get(*field).and_then(Value::as_u64))
            .unwrap_or(0);
        Ok(ChatRequest {
            stream: body.get("stream").and_then(Value::as_bool) == Some(true),
            include_usage: body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true),
            prompt_chars,
            max_tokens,
            prefill,
        })
    }

    /// Estimated prompt tokens: characters / 4, at least 1.
    pub(crate) fn prompt_tokens(&self) -> u64 {
        text::prompt_tokens(self.prompt_chars)
    }
}

/// The text of a message content: the string itself, or the text parts of an array joined.
fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_without_model_or_messages_is_refused() {
        assert!(model_id(&json!({"messages": []})).is_err());
        assert!(model_id(&json!([1])).is_err());
        assert!(ChatRequest::parse(&json!({"model": "m"})).is_err());
    }

    #[test]
    fn prompt_size_counts_string_and_text_part_contents() {
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "12345678"},
            {"role": "user", "content": [{"type": "text", "text": "1234"}, {"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "assistant", "content": null, "tool_calls": []},
        ]});
        let request = ChatRequest::parse(&body).expect("valid");
        assert_eq!(request.prompt_chars, 12);
        assert_eq!(request.prompt_tokens(), 3);
        assert_eq!(request.prefill, None);
        assert!(!request.stream);
    }

    #[test]
    fn a_trailing_assistant_message_is_a_prefill() {
        let body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
            "max_completion_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hel"}]});
        let request = ChatRequest::parse(&body).expect("valid");
        assert_eq!(request.prefill.as_deref(), Some("Hel"));
        assert!(request.stream && request.include_usage);
        assert_eq!(request.max_tokens, 50);
    }
}
