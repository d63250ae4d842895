//! The Response object and its output items, as OpenAI's SDKs read them: what the request asked
//! for is repeated (`tools`, `text`, `tool_choice`, …), the output is built from a chat answer.

use super::tools::ToolNames;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// A fresh id with its kind's prefix (`resp`, `msg`, `fc`, …).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// What the Response object repeats of the request, kept as the client sent it.
#[derive(Clone, Debug)]
pub struct Echo {
    pub instructions: Option<Box<RawValue>>,
    pub max_output_tokens: Option<u64>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: Option<Box<RawValue>>,
    pub store: bool,
    pub temperature: Option<Box<RawValue>>,
    pub top_p: Option<Box<RawValue>>,
    pub text: Box<RawValue>,
    pub tool_choice: Box<RawValue>,
    pub tools: Box<RawValue>,
    pub metadata: Box<RawValue>,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            instructions: None,
            max_output_tokens: None,
            parallel_tool_calls: true,
            previous_response_id: None,
            reasoning: None,
            store: false,
            temperature: None,
            top_p: None,
            text: raw(r#"{"format":{"type":"text"}}"#),
            tool_choice: raw(r#""auto""#),
            tools: raw("[]"),
            metadata: raw("{}"),
        }
    }
}

impl Echo {
    pub fn keep(value: &RawValue) -> Box<RawValue> {
        value.to_owned()
    }
}

/// Everything a Response object says besides its output: its id, time, model and the echo.
#[derive(Clone, Debug)]
pub struct Head {
    pub id: String,
    pub created_at: i64,
    /// The model that answered (the upstream's own name), or the one asked for before that.
    pub model: String,
    pub echo: Echo,
    /// The chat names of the request's tools, to name calls as the client declared them.
    pub names: ToolNames,
}

/// How a response ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    /// Cut by the output limit or a content filter (`incomplete_details.reason`).
    Incomplete(&'static str),
    Failed,
}

impl Status {
    /// From a chat `finish_reason`.
    pub fn of_finish(reason: Option<&str>) -> Status {
        match reason {
            Some("length") => Status::Incomplete("max_output_tokens"),
            Some("content_filter") => Status::Incomplete("content_filter"),
            _ => Status::Completed,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete(_) => "incomplete",
            Status::Failed => "failed",
        }
    }

    /// The status of an item the response ends with.
    pub fn item_label(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            _ => "incomplete",
        }
    }
}

#[derive(Serialize)]
struct ResponseObject<'a> {
    id: &'a str,
    object: &'static str,
    created_at: i64,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<i64>,
    error: Option<&'a Value>,
    incomplete_details: Option<Value>,
    instructions: Option<&'a RawValue>,
    max_output_tokens: Option<u64>,
    metadata: &'a RawValue,
    model: &'a str,
    output: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    output_text: Option<String>,
    parallel_tool_calls: bool,
    previous_response_id: Option<&'a str>,
    reasoning: Option<&'a RawValue>,
    store: bool,
    temperature: Option<&'a RawValue>,
    text: &'a RawValue,
    tool_choice: &'a RawValue,
    tools: &'a RawValue,
    top_p: Option<&'a RawValue>,
    truncation: &'static str,
    usage: Option<&'a Value>,
}

/// The parts of a Response object that change as it goes.
pub struct State<'a> {
    pub status: Status,
    pub output: &'a [Value],
    pub usage: Option<&'a Value>,
    pub error: Option<&'a Value>,
    /// Include the `output_text` convenience field (whole answers, for raw HTTP clients).
    pub with_output_text: bool,
}

impl Head {
    /// The Response object as JSON text.
    pub fn object(&self, state: State<'_>) -> Box<RawValue> {
        let echo = &self.echo;
        let finished = matches!(state.status, Status::Completed);
        let object = ResponseObject {
            id: &self.id,
            object: "response",
            created_at: self.created_at,
            status: state.status.label(),
            completed_at: finished.then(|| crate::time::now_ms() / 1000),
            error: state.error,
            incomplete_details: match state.status {
                Status::Incomplete(reason) => Some(json!({ "reason": reason })),
                _ => None,
            },
            instructions: echo.instructions.as_deref(),
            max_output_tokens: echo.max_output_tokens,
            metadata: &echo.metadata,
            model: &self.model,
            output: state.output,
            output_text: state.with_output_text.then(|| output_text(state.output)),
            parallel_tool_calls: echo.parallel_tool_calls,
            previous_response_id: echo.previous_response_id.as_deref(),
            reasoning: echo.reasoning.as_deref(),
            store: echo.store,
            temperature: echo.temperature.as_deref(),
            text: &echo.text,
            tool_choice: &echo.tool_choice,
            tools: &echo.tools,
            top_p: echo.top_p.as_deref(),
            truncation: "disabled",
            usage: state.usage,
        };
        serde_json::value::to_raw_value(&object).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }
}

/// The text of every `output_text` part, joined (what the SDKs call `output_text`).
pub fn output_text(output: &[Value]) -> String {
    output
        .iter()
        .filter(|item| item["type"] == "message")
        .filter_map(|item| item["content"].as_array())
        .flatten()
        .filter(|part| part["type"] == "output_text")
        .filter_map(|part| part["text"].as_str())
        .collect()
}

/// A chat `usage` in the Responses form.
pub fn usage(chat: &Value) -> Option<Value> {
    let input = chat.get("prompt_tokens")?.as_u64()?;
    let output = chat
        .get("completion_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let cached = chat
        .pointer("/prompt_tokens_details/cached_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let reasoning = chat
        .pointer("/completion_tokens_details/reasoning_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input.saturating_add(output),
    }))
}

/// An assistant message item.
pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": if status == "in_progress" { json!([]) } else { json!([text_part(text)]) },
    })
}

pub fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A reasoning item (the route's visible reasoning text; never encrypted content).
pub fn reasoning_item(id: &str, text: &str, status: &str) -> Value {
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([{"type": "reasoning_text", "text": text}])
    };
    json!({"id": id, "type": "reasoning", "summary": [], "content": content, "status": status})
}

/// A function or custom tool call item, named as the client declared the tool.
pub fn call_item(
    names: &ToolNames,
    id: &str,
    call_id: &str,
    chat_name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    let tool = names.lookup(chat_name);
    let mut item = if tool.custom {
        let input = if status == "in_progress" {
            String::new()
        } else {
            custom_input(arguments)
        };
        json!({"id": id, "type": "custom_tool_call", "status": status, "call_id": call_id,
               "name": tool.name, "input": input})
    } else {
        json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
               "name": tool.name, "arguments": arguments})
    };
    if let Some(namespace) = tool.namespace {
        item["namespace"] = Value::String(namespace);
    }
    item
}

/// A custom tool's input from the chat function's arguments (`{"input": …}`, or, from a model
/// that wrote the text straight in, the arguments themselves).
pub fn custom_input(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| arguments.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_renamed_with_its_details() {
        let chat = json!({"prompt_tokens": 10, "completion_tokens": 5,
                          "prompt_tokens_details": {"cached_tokens": 4},
                          "completion_tokens_details": {"reasoning_tokens": 2}});
        let got = usage(&chat).unwrap();
        assert_eq!(got["input_tokens"], 10);
        assert_eq!(got["output_tokens"], 5);
        assert_eq!(got["total_tokens"], 15);
        assert_eq!(got["input_tokens_details"]["cached_tokens"], 4);
        assert_eq!(got["output_tokens_details"]["reasoning_tokens"], 2);
        assert!(usage(&json!({})).is_none());
    }

    #[test]
    fn the_object_repeats_the_request_and_marks_incomplete_answers() {
        let head = Head {
            id: "resp_1".into(),
            created_at: 7,
            model: "m".into(),
            echo: Echo::default(),
            names: ToolNames::default(),
        };
        let output = [message_item("msg_1", "hi", "incomplete")];
        let object: Value = serde_json::from_str(
            head.object(State {
                status: Status::Incomplete("max_output_tokens"),
                output: &output,
                usage: None,
                error: None,
                with_output_text: true,
            })
            .get(),
        )
        .unwrap();
        assert_eq!(object["object"], "response");
        assert_eq!(object["status"], "incomplete");
        assert_eq!(object["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(object["output_text"], "hi");
        assert_eq!(object["tools"], json!([]));
        assert_eq!(object["tool_choice"], "auto");
        assert_eq!(object["text"]["format"]["type"], "text");
        assert_eq!(object["parallel_tool_calls"], true);
    }

    #[test]
    fn a_custom_tool_input_is_read_from_the_arguments_or_taken_whole() {
        assert_eq!(
            custom_input(r#"{"input":"*** Begin Patch"}"#),
            "*** Begin Patch"
        );
        assert_eq!(custom_input("*** Begin Patch"), "*** Begin Patch");
    }
}
