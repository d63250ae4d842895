//! The chat completions stream the engine sends (already past its commit point, rescued where it
//! broke) as Anthropic's event stream: `message_start`, `ping`, then per block
//! `content_block_start`, `content_block_delta` (`text_delta`, `input_json_delta`) and
//! `content_block_stop`, then `message_delta` with `stop_reason` and usage, and `message_stop`.
//! A stream the engine ends with an error event ends with Anthropic's `error` event instead,
//! never with `message_stop`: a truncated answer is not closed as if complete.

use super::request::Asked;
use super::response::{FunctionIn, UsageIn, matched_stop, new_tool_id, stop_reason};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::borrow::Cow;

/// The block being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Text { index: usize },
    Tool { index: usize, call: u64 },
}

/// Translates one stream, event by event.
pub struct StreamTranslator {
    id: String,
    model: String,
    /// The gateway's prompt estimate, until the upstream's usage says.
    estimated_input_tokens: u64,
    asked: Asked,
    next_index: usize,
    open: Option<Open>,
    /// Tool calls seen: the chat call index and the block it became.
    calls: Vec<(u64, usize)>,
    finish_reason: Option<String>,
    matched_stop: Option<String>,
    usage: Option<UsageIn>,
    ended: bool,
}

#[derive(Deserialize)]
struct ChunkIn<'a> {
    #[serde(borrow, default)]
    choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    usage: Option<UsageIn>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow, default)]
    delta: Option<DeltaIn<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<&'a RawValue>,
    #[serde(borrow, default)]
    matched_stop: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct DeltaIn<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Vec<ToolDeltaIn<'a>>,
}

#[derive(Deserialize)]
struct ToolDeltaIn<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionIn<'a>>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Appends one SSE event to `out`.
fn event(out: &mut String, kind: &str, data: &Value) {
    out.push_str("event: ");
    out.push_str(kind);
    out.push_str("\ndata: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

impl StreamTranslator {
    /// `id` and `model` are what `message_start` reports.
    pub fn new(id: String, model: String, estimated_input_tokens: u64, asked: Asked) -> Self {
        Self {
            id,
            model,
            estimated_input_tokens,
            asked,
            next_index: 0,
            open: None,
            calls: Vec::new(),
            finish_reason: None,
            matched_stop: None,
            usage: None,
            ended: false,
        }
    }

    /// The events that open the message: `message_start`, then a `ping`.
    pub fn start(&mut self) -> String {
        let mut out = String::new();
        event(
            &mut out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": self.estimated_input_tokens, "output_tokens": 0},
            }}),
        );
        event(&mut out, "ping", &json!({"type": "ping"}));
        out
    }

    /// Translates one event of the chat stream (its data: a chunk, `[DONE]`, or the engine's
    /// error event) into the events to send ("" for none).
    pub fn push(&mut self, data: &str) -> String {
        let mut out = String::new();
        if !self.ended {
            self.on_data(data, &mut out);
        }
        out
    }

    /// The chat stream has ended: if it never said it was complete, the message ends with an
    /// `error` event.
    pub fn end(&mut self) -> String {
        let mut out = String::new();
        if !self.ended {
            self.ended = true;
            error_event(
                &mut out,
                "api_error",
                "the stream ended before the answer was complete",
            );
        }
        out
    }

    fn on_data(&mut self, data: &str, out: &mut String) {
        let data = data.trim();
        if data.is_empty() {
            return;
        }
        if data == "[DONE]" {
            self.close_block(out);
            self.close_message(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ChunkIn<'_>>(data) else {
            return;
        };
        if let Some(error) = chunk.error {
            let error: ErrorIn<'_> = serde_json::from_str(error.get()).unwrap_or(ErrorIn {
                code: None,
                message: None,
            });
            let kind = match error.code.as_deref() {
                Some("stream_timeout") => "timeout_error",
                _ => "api_error",
            };
            let message = error
                .message
                .unwrap_or(Cow::Borrowed("the upstream stream failed"));
            self.ended = true;
            error_event(out, kind, &message);
            return;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    self.text_delta(&text, out);
                }
                for call in delta.tool_calls {
                    self.tool_call(call, out);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason.into_owned());
                self.matched_stop = matched_stop([choice.stop_reason, choice.matched_stop]);
            }
        }
    }

    fn text_delta(&mut self, text: &str, out: &mut String) {
        let index = match self.open {
            Some(Open::Text { index }) => index,
            _ => {
                self.close_block(out);
                let index = self.open_block(out, json!({"type": "text", "text": ""}));
                self.open = Some(Open::Text { index });
                index
            }
        };
        event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
        );
    }

    fn tool_call(&mut self, call: ToolDeltaIn<'_>, out: &mut String) {
        let current = match self.open {
            Some(Open::Tool { call, .. }) => Some(call),
            _ => None,
        };
        // Without an index, a call with an id is a new one and a fragment belongs to the last.
        let number = call.index.unwrap_or(match (&call.id, current) {
            (None, Some(current)) => current,
            _ => self.calls.len() as u64,
        });
        let function = call.function.unwrap_or(FunctionIn {
            name: None,
            arguments: None,
        });
        let known = self
            .calls
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, b)| *b);
        let index = match (known, self.open) {
            (Some(index), _) => index,
            (None, _) => {
                self.close_block(out);
                let id = call.id.map_or_else(new_tool_id, Cow::into_owned);
                let name = function.name.as_deref().unwrap_or_default();
                let index = self.open_block(
                    out,
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                );
                self.open = Some(Open::Tool {
                    index,
                    call: number,
                });
                self.calls.push((number, index));
                index
            }
        };
        if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
            event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": arguments}}),
            );
        }
    }

    fn open_block(&mut self, out: &mut String, block: Value) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn close_block(&mut self, out: &mut String) {
        let index = match self.open.take() {
            Some(Open::Text { index } | Open::Tool { index, .. }) => index,
            None => return,
        };
        event(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
    }

    fn close_message(&mut self, out: &mut String) {
        self.ended = true;
        let finish = match self.finish_reason.as_deref() {
            // Some providers end a turn of tool calls with `stop`; the client must still run them.
            None | Some("stop") if !self.calls.is_empty() => Some("tool_calls"),
            other => other,
        };
        let (stop_reason, stop_sequence) =
            stop_reason(finish, self.matched_stop.take(), &self.asked);
        let usage = match self.usage {
            Some(usage) => usage.to_anthropic(),
            None => json!({"output_tokens": 0}),
        };
        event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": usage}),
        );
        event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

fn error_event(out: &mut String, kind: &str, message: &str) {
    event(
        out,
        "error",
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    );
}
