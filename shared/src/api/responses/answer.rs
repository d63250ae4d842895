//! A whole chat completion as a Response object: reasoning, the message and the tool calls as
//! output items, the usage renamed, and the assistant turn in chat form (kept for a follow-up).

use super::input::{ChatCall, ChatMessage, ChatToolCall, Content};
use super::object::{self, Head, State, Status, new_id};
use crate::providers::answer::text_of;
use serde_json::Value;
use serde_json::value::RawValue;

/// A translated answer.
pub struct Answer {
    /// The Response object as JSON text.
    pub body: Box<RawValue>,
    /// The assistant turn as chat messages.
    pub reply: Vec<ChatMessage>,
}

/// Translates a chat completion body (the upstream's own; `head.model` is set from it).
pub fn from_completion(head: &mut Head, completion: &[u8]) -> Answer {
    let completion: Value = serde_json::from_slice(completion).unwrap_or(Value::Null);
    if let Some(model) = completion.get("model").and_then(Value::as_str) {
        head.model = model.to_string();
    }
    let choice = completion.pointer("/choices/0");
    let message = choice.and_then(|c| c.get("message"));
    let status = Status::of_finish(
        choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str),
    );
    let item_status = status.item_label();
    let text = text_of(message.and_then(|m| m.get("content")));
    let reasoning = message
        .and_then(|m| {
            ["reasoning_content", "reasoning"]
                .iter()
                .find_map(|f| m.get(*f).and_then(Value::as_str))
        })
        .unwrap_or_default();
    let calls = tool_calls(message);

    let mut output = Vec::new();
    if !reasoning.is_empty() {
        output.push(object::reasoning_item(
            &new_id("rs"),
            reasoning,
            item_status,
        ));
    }
    if !text.is_empty() || calls.is_empty() {
        output.push(object::message_item(&new_id("msg"), &text, item_status));
    }
    for call in &calls {
        output.push(object::call_item(
            &head.names,
            &new_id("fc"),
            &call.id,
            &call.function.name,
            &call.function.arguments,
            item_status,
        ));
    }
    let usage = completion.get("usage").and_then(object::usage);
    let body = head.object(State {
        status,
        output: &output,
        usage: usage.as_ref(),
        error: None,
        with_output_text: true,
    });
    let reply = vec![ChatMessage {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(Content::Text(text)),
        tool_calls: calls,
        tool_call_id: None,
    }];
    Answer { body, reply }
}

/// A message's tool calls (or its legacy `function_call`), in chat form.
fn tool_calls(message: Option<&Value>) -> Vec<ChatToolCall> {
    let Some(message) = message else {
        return Vec::new();
    };
    let call = |id: Option<&str>, function: &Value| ChatToolCall {
        id: id.map_or_else(|| new_id("call"), str::to_string),
        kind: "function".into(),
        function: ChatCall {
            name: function["name"].as_str().unwrap_or_default().to_string(),
            arguments: match &function["arguments"] {
                Value::String(text) => text.clone(),
                Value::Null => "{}".into(),
                other => other.to_string(),
            },
        },
    };
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        return calls
            .iter()
            .map(|c| call(c.get("id").and_then(Value::as_str), &c["function"]))
            .collect();
    }
    match message.get("function_call") {
        Some(function) if function.is_object() => vec![call(None, function)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::responses::object::Echo;
    use crate::api::responses::tools;
    use serde_json::json;

    fn head(tools_json: &str) -> Head {
        let raw: &RawValue = serde_json::from_str(tools_json).unwrap();
        Head {
            id: "resp_1".into(),
            created_at: 1,
            model: "auto".into(),
            echo: Echo::default(),
            names: tools::translate(Some(raw)).unwrap().names,
        }
    }

    fn translate(head: &mut Head, completion: Value) -> (Value, Vec<ChatMessage>) {
        let answer = from_completion(head, completion.to_string().as_bytes());
        (
            serde_json::from_str(answer.body.get()).unwrap(),
            answer.reply,
        )
    }

    #[test]
    fn a_text_answer_becomes_a_message_item_with_output_text_and_usage() {
        let mut head = head("[]");
        let (response, reply) = translate(
            &mut head,
            json!({"model":"llama-3.3","choices":[{"index":0,"finish_reason":"stop",
                   "message":{"role":"assistant","content":"Hello.","reasoning_content":"think"}}],
                   "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}),
        );
        assert_eq!(response["model"], "llama-3.3");
        assert_eq!(response["status"], "completed");
        assert_eq!(response["output_text"], "Hello.");
        assert_eq!(response["output"][0]["type"], "reasoning");
        assert_eq!(response["output"][0]["content"][0]["text"], "think");
        let message = &response["output"][1];
        assert_eq!(message["type"], "message");
        assert_eq!(message["role"], "assistant");
        assert!(message["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(
            message["content"][0],
            json!({"type":"output_text","text":"Hello.","annotations":[],"logprobs":[]})
        );
        assert_eq!(response["usage"]["total_tokens"], 5);
        assert_eq!(reply, vec![ChatMessage::text("assistant", "Hello.")]);
    }

    #[test]
    fn tool_calls_become_function_and_custom_call_items() {
        let mut head = head(
            r#"[{"type":"function","name":"get_weather"},{"type":"custom","name":"apply_patch"}]"#,
        );
        let (response, reply) = translate(
            &mut head,
            json!({"choices":[{"finish_reason":"tool_calls","message":{"role":"assistant","content":null,
                   "tool_calls":[
                     {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                     {"id":"call_b","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Begin Patch\"}"}}]}}]}),
        );
        let output = response["output"].as_array().unwrap();
        assert_eq!(output.len(), 2, "no empty message item beside tool calls");
        assert_eq!(output[0]["type"], "function_call");
        assert_eq!(output[0]["call_id"], "call_a");
        assert_eq!(output[0]["name"], "get_weather");
        assert_eq!(output[0]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(output[1]["type"], "custom_tool_call");
        assert_eq!(output[1]["input"], "*** Begin Patch");
        assert_eq!(response["output_text"], "");
        assert_eq!(reply[0].tool_calls.len(), 2);
        assert!(reply[0].content.is_none());
    }

    #[test]
    fn a_cut_answer_is_incomplete() {
        let mut head = head("[]");
        let (response, _) = translate(
            &mut head,
            json!({"choices":[{"finish_reason":"length","message":{"role":"assistant","content":"Hel"}}]}),
        );
        assert_eq!(response["status"], "incomplete");
        assert_eq!(
            response["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(response["output"][0]["status"], "incomplete");
    }
}
