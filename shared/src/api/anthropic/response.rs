//! A chat completion to a Messages answer: text and tool calls to `text` and `tool_use` blocks,
//! `finish_reason` to `stop_reason`, usage to Anthropic's usage (cached prompt tokens apart).

use super::request::Asked;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// What the engine's upstream answered could not be read as a chat completion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the upstream's answer could not be translated: {0}")]
pub struct UntranslatableAnswer(pub String);

#[derive(Deserialize)]
struct CompletionIn<'a> {
    #[serde(borrow, default)]
    choices: Vec<ChoiceIn<'a>>,
    #[serde(default)]
    usage: Option<UsageIn>,
}

#[derive(Deserialize)]
struct ChoiceIn<'a> {
    #[serde(borrow, default)]
    message: Option<MessageIn<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<&'a RawValue>,
    #[serde(borrow, default)]
    matched_stop: Option<&'a RawValue>,
}

/// Which stop sequence ended the answer, where the server says: vLLM's `stop_reason`, SGLang's
/// `matched_stop` (a token id there is not a sequence).
pub(crate) fn matched_stop(fields: [Option<&RawValue>; 2]) -> Option<String> {
    fields
        .into_iter()
        .flatten()
        .find_map(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_calls: Vec<ToolCallIn<'a>>,
}

#[derive(Deserialize)]
struct ToolCallIn<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionIn<'a>>,
}

/// A tool call's function, whole or as a stream's delta (the same two optional fields).
#[derive(Deserialize)]
pub(super) struct FunctionIn<'a> {
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) arguments: Option<Cow<'a, str>>,
}

/// Token counts as chat completions reports them.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct UsageIn {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

impl UsageIn {
    /// Anthropic counts cached prompt tokens apart from `input_tokens`.
    pub fn to_anthropic(self) -> Value {
        let cached = self
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .min(self.prompt_tokens);
        json!({
            "input_tokens": self.prompt_tokens - cached,
            "output_tokens": self.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
        })
    }
}

/// `stop_reason` and `stop_sequence` for a chat `finish_reason`.
pub(crate) fn stop_reason(
    finish_reason: Option<&str>,
    matched: Option<String>,
    asked: &Asked,
) -> (&'static str, Option<String>) {
    match finish_reason {
        Some("length") => ("max_tokens", None),
        Some("tool_calls" | "function_call") => ("tool_use", None),
        Some("content_filter") => ("refusal", None),
        _ => match matched.filter(|m| asked.stop_sequences.contains(m)) {
            Some(sequence) => ("stop_sequence", Some(sequence)),
            None => ("end_turn", None),
        },
    }
}

/// A tool call's `arguments` as the `input` object Anthropic's clients expect (an object even
/// when the model wrote something else: `{}` for nothing, the text under `arguments` otherwise).
pub(crate) fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ if arguments.trim().is_empty() => Value::Object(Map::new()),
        _ => json!({"arguments": arguments}),
    }
}

/// A new tool_use id where the upstream gave none.
pub(crate) fn new_tool_id() -> String {
    format!("toolu_{}", uuid::Uuid::new_v4().simple())
}

/// The message for a chat completion `body`; `id` and `model` are the gateway's.
pub fn to_message(
    body: &[u8],
    id: &str,
    model: &str,
    asked: &Asked,
) -> Result<Value, UntranslatableAnswer> {
    let completion: CompletionIn<'_> =
        serde_json::from_slice(body).map_err(|e| UntranslatableAnswer(e.to_string()))?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| UntranslatableAnswer("it has no choices".into()))?;
    let mut content = Vec::new();
    let mut tool_calls = Vec::new();
    if let Some(message) = choice.message {
        let text = message.content.map(text_of).unwrap_or_default();
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        tool_calls = message.tool_calls;
    }
    let has_tool_calls = !tool_calls.is_empty();
    for call in tool_calls {
        let function = call.function.unwrap_or(FunctionIn {
            name: None,
            arguments: None,
        });
        content.push(json!({
            "type": "tool_use",
            "id": call.id.map_or_else(new_tool_id, Cow::into_owned),
            "name": function.name.unwrap_or_default(),
            "input": tool_input(function.arguments.as_deref().unwrap_or_default()),
        }));
    }
    let finish = match choice.finish_reason.as_deref() {
        // Some providers end a turn of tool calls with `stop`; the client must still run them.
        None | Some("stop") if has_tool_calls => Some("tool_calls"),
        other => other,
    };
    let (stop_reason, stop_sequence) = stop_reason(
        finish,
        matched_stop([choice.stop_reason, choice.matched_stop]),
        asked,
    );
    Ok(json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": completion.usage.unwrap_or_default().to_anthropic(),
    }))
}

/// A message's content: a string, or (some providers) a list of text parts.
fn text_of(raw: &RawValue) -> String {
    #[derive(Deserialize)]
    struct PartIn {
        #[serde(default)]
        text: Option<String>,
    }
    if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
        return text;
    }
    serde_json::from_str::<Vec<PartIn>>(raw.get())
        .map(|parts| parts.into_iter().filter_map(|p| p.text).collect())
        .unwrap_or_default()
}
