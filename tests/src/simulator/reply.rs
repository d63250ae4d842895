//! What an answer contains (text or a tool call) and the metadata every response body repeats.

use serde_json::{Value, json};

use super::text;

/// The content of one answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reply {
    Text(String),
    ToolCall { name: String, arguments: String },
}

/// The id of the one tool call a [`Reply::ToolCall`] makes.
pub(crate) const TOOL_CALL_ID: &str = "call_sim_1";

impl Reply {
    pub(crate) fn finish_reason(&self) -> &'static str {
        match self {
            Reply::Text(_) => "stop",
            Reply::ToolCall { .. } => "tool_calls",
        }
    }

    /// Completion tokens: words of the text, or the tool call's size / 4 (at least 1).
    pub(crate) fn completion_tokens(&self) -> u64 {
        match self {
            Reply::Text(t) => text::completion_tokens(t),
            Reply::ToolCall { name, arguments } => {
                text::prompt_tokens(name.chars().count() + arguments.chars().count())
            }
        }
    }
}

/// The fields shared by every body of one response.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub prompt_tokens: u64,
}

impl Meta {
    pub(crate) fn usage(&self, completion_tokens: u64) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        })
    }
}

/// The answer to a continuation: `canonical` without `prefill` when it starts with it, else `canonical`.
pub(crate) fn continuation(canonical: &str, prefill: Option<&str>) -> String {
    match prefill {
        Some(p) => canonical.strip_prefix(p).unwrap_or(canonical).to_string(),
        None => canonical.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continuation_drops_the_prefill_only_when_the_answer_starts_with_it() {
        assert_eq!(continuation("Hello there", Some("Hello")), " there");
        assert_eq!(continuation("Hello there", Some("Bye")), "Hello there");
        assert_eq!(continuation("Hello there", None), "Hello there");
    }
}
