//! Non-streaming answers: the `chat.completion` body.

use serde_json::{Value, json};

use super::reply::{Meta, Reply, TOOL_CALL_ID};

/// The full `chat.completion` JSON for `reply`.
pub(crate) fn body(meta: &Meta, reply: &Reply) -> Value {
    let message = match reply {
        Reply::Text(text) => json!({"role": "assistant", "content": text}),
        Reply::ToolCall { name, arguments } => json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": TOOL_CALL_ID,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }],
        }),
    };
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason()}],
        "usage": meta.usage(reply.completion_tokens()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            id: "chatcmpl-sim-1".into(),
            created: 7,
            model: "m".into(),
            prompt_tokens: 3,
        }
    }

    #[test]
    fn a_text_completion_counts_words_as_completion_tokens() {
        let b = body(&meta(), &Reply::Text("one two three".into()));
        assert_eq!(b["choices"][0]["message"]["content"], "one two three");
        assert_eq!(b["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            b["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6})
        );
    }

    #[test]
    fn a_tool_call_completion_has_null_content_and_finishes_with_tool_calls() {
        let reply = Reply::ToolCall {
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        };
        let b = body(&meta(), &reply);
        let message = &b["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(message["tool_calls"][0]["id"], TOOL_CALL_ID);
        assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
        assert_eq!(b["choices"][0]["finish_reason"], "tool_calls");
    }
}
