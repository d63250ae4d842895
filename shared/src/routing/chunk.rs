//! Reading one streamed chunk: does it carry content (the commit point), a finish, usage, an error?

use serde_json::Value;

/// What the gateway needs to know about one `chat.completion.chunk`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkInfo {
    /// The text content of choice 0's delta.
    pub content: String,
    pub has_reasoning: bool,
    pub has_tool_calls: bool,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub is_error: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn from_json(usage: &Value) -> Option<Usage> {
        let prompt_tokens = usage.get("prompt_tokens")?.as_u64()?;
        Some(Usage {
            prompt_tokens,
            completion_tokens: usage
                .get("completion_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }
}

impl ChunkInfo {
    pub fn inspect(chunk: &Value) -> ChunkInfo {
        let mut info = ChunkInfo {
            is_error: chunk.get("error").is_some(),
            usage: chunk.get("usage").and_then(Usage::from_json),
            ..ChunkInfo::default()
        };
        let Some(choice) = chunk.pointer("/choices/0") else {
            return info;
        };
        info.finish_reason = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(delta) = choice.get("delta") {
            info.content = text_of(delta.get("content"));
            info.has_reasoning = ["reasoning_content", "reasoning"].iter().any(|f| {
                delta
                    .get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            });
            info.has_tool_calls = delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .is_some_and(|calls| !calls.is_empty())
                || delta.get("function_call").is_some_and(|f| !f.is_null());
        }
        info
    }

    /// The first chunk with content, reasoning or a tool call: from here the client has part of the answer.
    pub fn is_commit_point(&self) -> bool {
        !self.content.is_empty() || self.has_reasoning || self.has_tool_calls
    }
}

/// A content field as text: a string, or the text parts of an array (Mistral).
pub fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Whether a non-streamed completion has anything in it.
pub fn completion_has_answer(json: &Value) -> bool {
    let Some(message) = json.pointer("/choices/0/message") else {
        return false;
    };
    !text_of(message.get("content")).is_empty()
        || ["reasoning_content", "reasoning"].iter().any(|f| {
            message
                .get(*f)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
        || message
            .get("tool_calls")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty())
        || message.get("function_call").is_some_and(|f| !f.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_role_only_chunk_is_not_the_commit_point_but_content_is() {
        let role = json!({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]});
        assert!(!ChunkInfo::inspect(&role).is_commit_point());
        let text = json!({"choices":[{"index":0,"delta":{"content":" hi"}}]});
        assert_eq!(ChunkInfo::inspect(&text).content, " hi");
        let tool = json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]});
        assert!(ChunkInfo::inspect(&tool).is_commit_point());
    }

    #[test]
    fn usage_finish_and_errors_are_seen() {
        let usage = json!({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}});
        assert_eq!(
            ChunkInfo::inspect(&usage).usage,
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 5
            })
        );
        let fin = json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]});
        assert_eq!(
            ChunkInfo::inspect(&fin).finish_reason.as_deref(),
            Some("stop")
        );
        assert!(ChunkInfo::inspect(&json!({"error":{"message":"x"}})).is_error);
    }

    #[test]
    fn an_empty_completion_has_no_answer() {
        assert!(!completion_has_answer(
            &json!({"choices":[{"message":{"content":""}}]})
        ));
        assert!(completion_has_answer(
            &json!({"choices":[{"message":{"content":[{"type":"text","text":"x"}]}}]})
        ));
    }
}
