//! The chat completions stream the engine sends (already past its commit point, rescued where it
//! broke) as Anthropic's event stream: `message_start`, `ping`, then per block
//! `content_block_start`, `content_block_delta` (`text_delta`, `input_json_delta`) and
//! `content_block_stop`, then `message_delta` with `stop_reason` and usage, and `message_stop`.
//! A stream the engine ends with an error event ends with Anthropic's `error` event instead,
//! never with `message_stop`: a truncated answer is not closed as if complete.

use super::request::Asked;
use super::response::{UsageIn, matched_stop, new_tool_id, stop_reason};
use bytes::Bytes;
use futures::{Stream, StreamExt};
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
    /// Bytes of an event not yet ended by a blank line.
    pending: Vec<u8>,
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
    function: Option<FunctionDeltaIn<'a>>,
}

#[derive(Deserialize)]
struct FunctionDeltaIn<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Appends one SSE event to `out`.
fn event(out: &mut Vec<u8>, kind: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // A `Value` always serialises.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

impl StreamTranslator {
    /// `id` and `model` are what `message_start` reports.
    pub fn new(id: String, model: String, estimated_input_tokens: u64, asked: Asked) -> Self {
        Self {
            id,
            model,
            estimated_input_tokens,
            asked,
            pending: Vec::new(),
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
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
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

    /// Translates the next bytes of the chat stream (events may be split anywhere).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.pending.extend_from_slice(bytes);
        while let Some(end) = find_blank_line(&self.pending) {
            let raw: Vec<u8> = self.pending.drain(..end.0 + end.1).collect();
            let data = event_data(&raw[..end.0]);
            self.on_data(&data, &mut out);
            if self.ended {
                break;
            }
        }
        out
    }

    /// The chat stream has ended: if it never said it was complete, the message ends with an
    /// `error` event.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
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

    fn on_data(&mut self, data: &str, out: &mut Vec<u8>) {
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
                    self.text(&text, out);
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

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
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

    fn tool_call(&mut self, call: ToolDeltaIn<'_>, out: &mut Vec<u8>) {
        let current = match self.open {
            Some(Open::Tool { call, .. }) => Some(call),
            _ => None,
        };
        // Without an index, a call with an id is a new one and a fragment belongs to the last.
        let number = call.index.unwrap_or(match (&call.id, current) {
            (None, Some(current)) => current,
            _ => self.calls.len() as u64,
        });
        let function = call.function.unwrap_or(FunctionDeltaIn {
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

    fn open_block(&mut self, out: &mut Vec<u8>, block: Value) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
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

    fn close_message(&mut self, out: &mut Vec<u8>) {
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

fn error_event(out: &mut Vec<u8>, kind: &str, message: &str) {
    event(
        out,
        "error",
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    );
}

/// Where the first event ends: the length before the blank line, and the blank line's length.
fn find_blank_line(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            if bytes.get(i + 1) == Some(&b'\n') {
                return Some((i, 2));
            }
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

/// The `data:` lines of one event, joined.
fn event_data(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut data = String::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    data
}

/// The engine's chat stream as Anthropic's event stream.
pub fn translate_stream<S, E>(
    inner: S,
    translator: StreamTranslator,
) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    enum Phase {
        Start,
        Body,
        Done,
    }
    let state = (Box::pin(inner), translator, Phase::Start);
    futures::stream::unfold(state, |(mut inner, mut translator, phase)| async move {
        match phase {
            Phase::Start => {
                let opening = Bytes::from(translator.start());
                Some((Ok(opening), (inner, translator, Phase::Body)))
            }
            Phase::Body => loop {
                match inner.next().await {
                    Some(Ok(bytes)) => {
                        let out = translator.feed(&bytes);
                        if !out.is_empty() {
                            return Some((Ok(Bytes::from(out)), (inner, translator, Phase::Body)));
                        }
                    }
                    Some(Err(error)) => {
                        return Some((Err(error), (inner, translator, Phase::Done)));
                    }
                    None => {
                        let out = Bytes::from(translator.finish());
                        return Some((Ok(out), (inner, translator, Phase::Done)));
                    }
                }
            },
            Phase::Done => None,
        }
    })
}
