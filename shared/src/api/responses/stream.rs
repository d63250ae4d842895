//! The stream translator: chat completion chunks in, Responses events out. A state machine that
//! opens an output item when its first delta arrives (reasoning, text, a tool call), closes it
//! when another begins or the stream ends, and numbers every event. A cut the engine could not
//! rescue (its `error` event) ends the response as `failed`; a stream that stops without `[DONE]`
//! too — a truncated answer is never closed as if complete.

use super::input::{ChatCall, ChatMessage, ChatToolCall, Content};
use super::object::{self, Head, State, Status, new_id};
use crate::providers::answer::text_of;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Message,
    Reasoning,
    Call,
}

/// One output item as it is being streamed.
struct Item {
    kind: Kind,
    id: String,
    /// Text, reasoning text, or arguments so far.
    text: String,
    call_id: String,
    chat_name: String,
    /// Its final form, once closed.
    done: Option<Value>,
}

/// The translator of one stream.
pub struct ResponseStream {
    head: Head,
    sequence: u64,
    items: Vec<Item>,
    /// The open message or reasoning item (there is at most one).
    open: Option<usize>,
    /// Tool calls by their chat index.
    calls: BTreeMap<u64, usize>,
    usage: Option<Value>,
    finish: Option<String>,
    ended: bool,
    failed: bool,
}

#[derive(Serialize)]
struct WithResponse<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    response: &'a RawValue,
}

impl ResponseStream {
    pub fn new(head: Head) -> Self {
        Self {
            head,
            sequence: 0,
            items: Vec::new(),
            open: None,
            calls: BTreeMap::new(),
            usage: None,
            finish: None,
            ended: false,
            failed: false,
        }
    }

    /// Whether the response has ended (completed, incomplete or failed).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether the response ended completed or incomplete (not failed).
    pub fn answered(&self) -> bool {
        self.ended && !self.failed
    }

    /// The response's id.
    pub fn id(&self) -> &str {
        &self.head.id
    }

    /// `response.created` and `response.in_progress`.
    pub fn opening(&mut self) -> String {
        let mut out = String::new();
        for kind in ["response.created", "response.in_progress"] {
            self.emit_response(&mut out, kind, Status::InProgress, None);
        }
        out
    }

    /// Translates one chat event's data (a chunk, `[DONE]`, or the engine's error event).
    pub fn push(&mut self, data: &str) -> String {
        let mut out = String::new();
        if self.ended {
            return out;
        }
        if data.trim() == "[DONE]" {
            self.complete(&mut out);
            return out;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return out;
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let code = error["code"].as_str().unwrap_or("server_error").to_string();
            let message = error["message"]
                .as_str()
                .unwrap_or("the upstream stream failed")
                .to_string();
            self.fail(&mut out, &code, &message);
            return out;
        }
        if let Some(usage) = chunk.get("usage").and_then(object::usage) {
            self.usage = Some(usage);
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return out;
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(reason.to_string());
        }
        let Some(delta) = choice.get("delta") else {
            return out;
        };
        let reasoning = ["reasoning_content", "reasoning"]
            .iter()
            .find_map(|f| delta.get(*f).and_then(Value::as_str))
            .unwrap_or_default();
        if !reasoning.is_empty() {
            self.text_delta(&mut out, Kind::Reasoning, reasoning);
        }
        let text = text_of(delta.get("content"));
        if !text.is_empty() {
            self.text_delta(&mut out, Kind::Message, &text);
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (position, call) in calls.iter().enumerate() {
                self.call_delta(&mut out, position as u64, call);
            }
        }
        out
    }

    /// The chat stream stopped without `[DONE]` or an error event: the answer is not whole.
    pub fn cut(&mut self) -> String {
        let mut out = String::new();
        if !self.ended {
            self.fail(
                &mut out,
                "stream_interrupted",
                "the stream ended before the answer was complete",
            );
        }
        out
    }

    /// The assistant turn streamed so far, in chat form (kept for a follow-up).
    pub fn reply(&self) -> Vec<ChatMessage> {
        let mut message = ChatMessage {
            role: "assistant".into(),
            content: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
        };
        let mut text = String::new();
        for item in &self.items {
            match item.kind {
                Kind::Message => text.push_str(&item.text),
                Kind::Reasoning => {}
                Kind::Call => message.tool_calls.push(ChatToolCall {
                    id: item.call_id.clone(),
                    kind: "function".into(),
                    function: ChatCall {
                        name: item.chat_name.clone(),
                        arguments: item.text.clone(),
                    },
                }),
            }
        }
        if !text.is_empty() || message.tool_calls.is_empty() {
            message.content = Some(Content::Text(text));
        }
        vec![message]
    }

    /// The final Response object (after the stream ended).
    pub fn object(&self) -> Box<RawValue> {
        let output = self.output();
        self.head.object(State {
            status: self.status(),
            output: &output,
            usage: self.usage.as_ref(),
            error: None,
            with_output_text: false,
        })
    }

    fn status(&self) -> Status {
        Status::of_finish(self.finish.as_deref())
    }

    fn text_delta(&mut self, out: &mut String, kind: Kind, delta: &str) {
        let index = match self.open {
            Some(i) if self.items[i].kind == kind => i,
            _ => {
                self.close_open(out, "completed");
                self.open_item(out, kind, String::new(), String::new())
            }
        };
        self.items[index].text.push_str(delta);
        let id = self.items[index].id.clone();
        let event = match kind {
            Kind::Reasoning => "response.reasoning_text.delta",
            _ => "response.output_text.delta",
        };
        let mut body =
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta});
        if kind == Kind::Message {
            body["logprobs"] = json!([]);
        }
        self.emit(out, event, body);
    }

    fn call_delta(&mut self, out: &mut String, position: u64, call: &Value) {
        let index = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position);
        let function = &call["function"];
        let name = function["name"].as_str().unwrap_or_default();
        let arguments = function["arguments"].as_str().unwrap_or_default();
        let item = match self.calls.get(&index) {
            Some(&item) => {
                self.items[item].chat_name.push_str(name);
                item
            }
            None => {
                self.close_open(out, "completed");
                let call_id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| new_id("call"), str::to_string);
                let item = self.open_item(out, Kind::Call, call_id, name.to_string());
                self.calls.insert(index, item);
                item
            }
        };
        if arguments.is_empty() {
            return;
        }
        self.items[item].text.push_str(arguments);
        if !self.head.names.is_custom(&self.items[item].chat_name) {
            let id = self.items[item].id.clone();
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": item, "delta": arguments}),
            );
        }
    }

    fn open_item(
        &mut self,
        out: &mut String,
        kind: Kind,
        call_id: String,
        chat_name: String,
    ) -> usize {
        let index = self.items.len();
        let id = new_id(match kind {
            Kind::Message => "msg",
            Kind::Reasoning => "rs",
            Kind::Call => "fc",
        });
        let added = match kind {
            Kind::Message => object::message_item(&id, "", "in_progress"),
            Kind::Reasoning => object::reasoning_item(&id, "", "in_progress"),
            Kind::Call => object::call_item(
                &self.head.names,
                &id,
                &call_id,
                &chat_name,
                "",
                "in_progress",
            ),
        };
        self.items.push(Item {
            kind,
            id: id.clone(),
            text: String::new(),
            call_id,
            chat_name,
            done: None,
        });
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        );
        let part = match kind {
            Kind::Message => Some(object::text_part("")),
            Kind::Reasoning => Some(json!({"type": "reasoning_text", "text": ""})),
            Kind::Call => None,
        };
        if let Some(part) = part {
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
            );
        } else {
            // Calls stay open to the end: their deltas may interleave.
        }
        if kind != Kind::Call {
            self.open = Some(index);
        }
        index
    }

    fn close_open(&mut self, out: &mut String, status: &str) {
        if let Some(index) = self.open.take() {
            self.close(out, index, status);
        }
    }

    fn close(&mut self, out: &mut String, index: usize, status: &str) {
        if self.items[index].done.is_some() {
            return;
        }
        let item = &self.items[index];
        let (id, text) = (item.id.clone(), item.text.clone());
        let at = |extra: Value| {
            let mut body = json!({"item_id": id, "output_index": index});
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            body
        };
        let mut events = Vec::new();
        let done = match item.kind {
            Kind::Message => {
                events.push((
                    "response.output_text.done",
                    at(json!({"content_index": 0, "text": text, "logprobs": []})),
                ));
                events.push((
                    "response.content_part.done",
                    at(json!({"content_index": 0, "part": object::text_part(&text)})),
                ));
                object::message_item(&id, &text, status)
            }
            Kind::Reasoning => {
                events.push((
                    "response.reasoning_text.done",
                    at(json!({"content_index": 0, "text": text})),
                ));
                events.push((
                    "response.content_part.done",
                    at(json!({"content_index": 0, "part": {"type": "reasoning_text", "text": text}})),
                ));
                object::reasoning_item(&id, &text, status)
            }
            Kind::Call => {
                let done = object::call_item(
                    &self.head.names,
                    &id,
                    &item.call_id,
                    &item.chat_name,
                    &text,
                    status,
                );
                if self.head.names.is_custom(&item.chat_name) {
                    let input = object::custom_input(&text);
                    events.push((
                        "response.custom_tool_call_input.delta",
                        at(json!({"delta": input})),
                    ));
                    events.push((
                        "response.custom_tool_call_input.done",
                        at(json!({"input": input})),
                    ));
                } else {
                    events.push((
                        "response.function_call_arguments.done",
                        at(json!({"name": done["name"], "arguments": text})),
                    ));
                }
                done
            }
        };
        for (kind, body) in events {
            self.emit(out, kind, body);
        }
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": done}),
        );
        self.items[index].done = Some(done);
    }

    fn close_all(&mut self, out: &mut String, status: &str) {
        self.close_open(out, status);
        for index in 0..self.items.len() {
            self.close(out, index, status);
        }
    }

    fn complete(&mut self, out: &mut String) {
        let status = self.status();
        self.close_all(out, status.item_label());
        let kind = match status {
            Status::Incomplete(_) => "response.incomplete",
            _ => "response.completed",
        };
        self.emit_response(out, kind, status, None);
        self.ended = true;
    }

    fn fail(&mut self, out: &mut String, code: &str, message: &str) {
        self.close_all(out, "incomplete");
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        let error = json!({"code": "server_error", "message": message});
        self.emit_response(out, "response.failed", Status::Failed, Some(&error));
        self.ended = true;
        self.failed = true;
    }

    fn output(&self) -> Vec<Value> {
        self.items.iter().filter_map(|i| i.done.clone()).collect()
    }

    fn emit_response(
        &mut self,
        out: &mut String,
        kind: &str,
        status: Status,
        error: Option<&Value>,
    ) {
        let output = if status == Status::InProgress {
            Vec::new()
        } else {
            self.output()
        };
        let response = self.head.object(State {
            status,
            output: &output,
            usage: self.usage.as_ref().filter(|_| status != Status::InProgress),
            error,
            with_output_text: false,
        });
        let event = WithResponse {
            kind,
            sequence_number: self.next_sequence(),
            response: &response,
        };
        write_event(
            out,
            kind,
            &serde_json::to_string(&event).unwrap_or_default(),
        );
    }

    fn emit(&mut self, out: &mut String, kind: &str, mut body: Value) {
        body["type"] = Value::String(kind.to_string());
        body["sequence_number"] = json!(self.next_sequence());
        write_event(out, kind, &body.to_string());
    }

    fn next_sequence(&mut self) -> u64 {
        let n = self.sequence;
        self.sequence += 1;
        n
    }
}

fn write_event(out: &mut String, kind: &str, data: &str) {
    out.push_str("event: ");
    out.push_str(kind);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::responses::object::Echo;
    use crate::api::responses::tools;

    fn stream(tools_json: &str) -> ResponseStream {
        let raw: &RawValue = serde_json::from_str(tools_json).unwrap();
        ResponseStream::new(Head {
            id: "resp_1".into(),
            created_at: 1,
            model: "m".into(),
            echo: Echo::default(),
            names: tools::translate(Some(raw)).unwrap().names,
        })
    }

    fn events(text: &str) -> Vec<Value> {
        text.split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let (name, data) = e.split_once("\ndata: ").unwrap();
                let data: Value = serde_json::from_str(data).unwrap();
                assert_eq!(name.strip_prefix("event: ").unwrap(), data["type"]);
                data
            })
            .collect()
    }

    fn kinds(events: &[Value]) -> Vec<&str> {
        events.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    fn chunk(delta: Value, finish: Option<&str>) -> String {
        json!({"choices":[{"index":0,"delta":delta,"finish_reason":finish}]}).to_string()
    }

    #[test]
    fn a_text_stream_becomes_the_responses_event_sequence() {
        let mut s = stream("[]");
        let mut all = s.opening();
        all += &s.push(&chunk(json!({"role":"assistant","content":""}), None));
        all += &s.push(&chunk(json!({"content":"Hel"}), None));
        all += &s.push(&chunk(json!({"content":"lo."}), None));
        all += &s.push(&chunk(json!({}), Some("stop")));
        all += &s.push(r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#);
        all += &s.push("[DONE]");
        let got = events(&all);
        assert_eq!(
            kinds(&got),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (n, event) in got.iter().enumerate() {
            assert_eq!(event["sequence_number"], n as u64);
        }
        assert_eq!(got[0]["response"]["status"], "in_progress");
        assert_eq!(got[6]["text"], "Hello.");
        let done = &got[9]["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][0]["content"][0]["text"], "Hello.");
        assert_eq!(done["usage"]["total_tokens"], 5);
        assert!(s.ended() && s.answered());
        assert_eq!(s.push("[DONE]"), "", "nothing after the end");
        assert_eq!(s.reply(), vec![ChatMessage::text("assistant", "Hello.")]);
    }

    #[test]
    fn reasoning_then_tool_calls_are_separate_items_in_order() {
        let mut s = stream(
            r#"[{"type":"function","name":"get_weather"},{"type":"custom","name":"apply_patch"}]"#,
        );
        let mut all = s.opening();
        all += &s.push(&chunk(json!({"reasoning_content":"Need weather."}), None));
        all += &s.push(&chunk(
            json!({"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}),
            None,
        ));
        all += &s.push(&chunk(
            json!({"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]}),
            None,
        ));
        all += &s.push(&chunk(
            json!({"tool_calls":[{"index":1,"id":"call_b","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Begin\"}"}}]}),
            Some("tool_calls"),
        ));
        all += &s.push("[DONE]");
        let got = events(&all);
        let kinds = kinds(&got);
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.output_item.added",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let added = &got[8];
        assert_eq!(added["output_index"], 1);
        assert_eq!(added["item"]["call_id"], "call_a");
        assert_eq!(got[12]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(got[12]["name"], "get_weather");
        assert_eq!(got[16]["item"]["type"], "custom_tool_call");
        assert_eq!(got[16]["item"]["input"], "*** Begin");
        let output = &got[17]["response"]["output"];
        assert_eq!(output.as_array().unwrap().len(), 3);
        assert_eq!(s.reply()[0].tool_calls.len(), 2);
    }

    #[test]
    fn an_unrescued_cut_fails_the_response_and_a_silent_end_too() {
        let mut s = stream("[]");
        let mut all = s.opening();
        all += &s.push(&chunk(json!({"content":"Hel"}), None));
        all += &s.push(r#"{"error":{"message":"broke off","type":"server_error","code":"stream_interrupted","param":null}}"#);
        let got = events(&all);
        let kinds = kinds(&got);
        assert_eq!(
            &kinds[kinds.len() - 2..],
            ["error", "response.failed"],
            "{kinds:?}"
        );
        let error = &got[got.len() - 2];
        assert_eq!(error["code"], "stream_interrupted");
        let failed = &got[got.len() - 1]["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"]["message"], "broke off");
        assert_eq!(failed["output"][0]["status"], "incomplete");
        assert_eq!(s.cut(), "");
        assert!(s.ended() && !s.answered());

        let mut silent = stream("[]");
        silent.opening();
        silent.push(&chunk(json!({"content":"Hel"}), None));
        let tail = events(&silent.cut());
        assert_eq!(tail.last().unwrap()["type"], "response.failed");
    }

    #[test]
    fn a_length_cut_ends_incomplete() {
        let mut s = stream("[]");
        s.opening();
        s.push(&chunk(json!({"content":"Hel"}), Some("length")));
        let tail = events(&s.push("[DONE]"));
        let last = tail.last().unwrap();
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
    }
}
