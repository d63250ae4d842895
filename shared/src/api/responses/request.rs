//! A Responses request read into types at the boundary, then written as a chat completions body.

use super::input::{self, ChatMessage};
use super::invalid;
use super::object::{Echo, Head, new_id};
use super::tools::{self, ChatTool};
use crate::routing::InvalidRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Fields refused: honouring them needs state or services this gateway does not have, and
/// dropping them would change what the client gets.
const REFUSED: &[(&str, &str)] = &[
    (
        "background",
        "background responses need a stored response to poll",
    ),
    (
        "conversation",
        "conversations are kept by OpenAI's servers; send the history in `input`",
    ),
    (
        "prompt",
        "prompt templates are stored at OpenAI; send the text in `instructions` and `input`",
    ),
    ("moderation", "the free routes give no moderation results"),
];

/// The request's top-level fields, each raw until read.
#[derive(Deserialize, Default)]
struct Body<'a> {
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    instructions: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tools: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(default, borrow)]
    parallel_tool_calls: Option<&'a RawValue>,
    #[serde(default, borrow)]
    max_output_tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(default, borrow)]
    top_p: Option<&'a RawValue>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    reasoning: Option<&'a RawValue>,
    #[serde(default, borrow)]
    stream: Option<&'a RawValue>,
    #[serde(default, borrow)]
    store: Option<&'a RawValue>,
    #[serde(default, borrow)]
    previous_response_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(default, borrow)]
    background: Option<&'a RawValue>,
    #[serde(default, borrow)]
    conversation: Option<&'a RawValue>,
    #[serde(default, borrow)]
    prompt: Option<&'a RawValue>,
    #[serde(default, borrow)]
    moderation: Option<&'a RawValue>,
}

impl<'a> Body<'a> {
    fn refused(&self, name: &str) -> Option<&'a RawValue> {
        match name {
            "background" => self.background.filter(|v| v.get() != "false"),
            "conversation" => self.conversation,
            "prompt" => self.prompt,
            "moderation" => self.moderation,
            _ => None,
        }
        .filter(|v| v.get() != "null")
    }
}

/// A parsed Responses request, borrowing the body it was read from.
pub struct ResponsesRequest<'a> {
    body: Body<'a>,
    pub model: String,
    pub stream: bool,
    /// `store` as sent (`None`: not said).
    pub store: Option<bool>,
    pub previous_response_id: Option<String>,
}

/// A request translated: the chat body to route, and what the answer's translation needs.
pub struct Translated {
    /// A chat completions body (to be validated by the chat parser like any client's).
    pub chat: Vec<u8>,
    pub stream: bool,
    /// The new turn as chat messages, `instructions` left out (a stored response keeps these).
    pub turn: Vec<ChatMessage>,
    pub head: Head,
}

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<&'a ChatMessage>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ChatTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum ResponseFormat<'a> {
    #[serde(rename = "json_object")]
    JsonObject,
    #[serde(rename = "json_schema")]
    JsonSchema { json_schema: JsonSchema<'a> },
}

#[derive(Serialize, Deserialize)]
struct JsonSchema<'a> {
    #[serde(default)]
    name: Option<String>,
    #[serde(borrow)]
    schema: &'a RawValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct TextIn<'a> {
    #[serde(default, borrow)]
    format: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct FormatIn<'a> {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    schema: Option<&'a RawValue>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct ReasoningIn {
    #[serde(default)]
    effort: Option<String>,
}

fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|r| r.get() != "null")
}

fn typed<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    message: &str,
    param: &str,
) -> Result<Option<T>, InvalidRequest> {
    present(raw)
        .map(|raw| serde_json::from_str(raw.get()).map_err(|_| invalid(message, param)))
        .transpose()
}

impl<'a> ResponsesRequest<'a> {
    /// Reads a request body: its JSON shape and the fields the handler decides on.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, InvalidRequest> {
        let text = std::str::from_utf8(bytes).map_err(|e| InvalidRequest {
            message: format!("the request body is not valid UTF-8: {e}"),
            param: None,
        })?;
        if !text.trim_start().starts_with('{') {
            return Err(InvalidRequest {
                message: "the request body must be a JSON object".into(),
                param: None,
            });
        }
        let body: Body<'a> = serde_json::from_str(text).map_err(|e| InvalidRequest {
            message: format!("the request body is not a valid Responses request: {e}"),
            param: None,
        })?;
        for (name, why) in REFUSED {
            if body.refused(name).is_some() {
                return Err(invalid(format!("`{name}` is not served here: {why}"), name));
            }
        }
        let model: Option<String> = typed(body.model, "`model` must be a string", "model")?;
        let model = match model.as_deref().map(str::trim) {
            None | Some("") => "auto".to_string(),
            Some(name) => name.to_string(),
        };
        Ok(Self {
            model,
            stream: typed(body.stream, "`stream` must be a boolean", "stream")?.unwrap_or(false),
            store: typed(body.store, "`store` must be a boolean", "store")?,
            previous_response_id: typed(
                body.previous_response_id,
                "`previous_response_id` must be a string",
                "previous_response_id",
            )?,
            body,
        })
    }

    /// Translates to a chat body; `history` is the stored conversation `previous_response_id`
    /// continues (empty for none); `store` is whether this response will be kept.
    pub fn translate(
        &self,
        history: &[ChatMessage],
        store: bool,
        response_id: String,
        created_at: i64,
    ) -> Result<Translated, InvalidRequest> {
        let body = &self.body;
        let instructions: Option<String> = typed(
            body.instructions,
            "`instructions` must be a string",
            "instructions",
        )?;
        let mut tools = tools::translate(present(body.tools))?;
        let tool_choice = tools::choice(present(body.tool_choice), &mut tools)?;
        let turn = input::translate(body.input, &tools.names)?;
        let parallel: Option<bool> = typed(
            body.parallel_tool_calls,
            "`parallel_tool_calls` must be a boolean",
            "parallel_tool_calls",
        )?;
        let max_output_tokens: Option<u64> = typed(
            body.max_output_tokens,
            "`max_output_tokens` must be a non-negative integer",
            "max_output_tokens",
        )?;
        for (raw, name) in [(body.temperature, "temperature"), (body.top_p, "top_p")] {
            typed::<f64>(raw, &format!("`{name}` must be a number"), name)?;
        }
        let response_format = response_format(present(body.text))?;
        let reasoning_effort = reasoning_effort(present(body.reasoning))?;

        let system = instructions
            .as_ref()
            .map(|text| ChatMessage::text("system", text.clone()));
        let messages: Vec<&ChatMessage> = system
            .iter()
            .chain(history.iter())
            .chain(turn.iter())
            .collect();
        let has_tools = !tools.chat.is_empty();
        let chat = ChatBody {
            model: &self.model,
            messages,
            stream: self.stream,
            stream_options: self
                .stream
                .then(|| serde_json::json!({"include_usage": true})),
            tool_choice: tool_choice.filter(|_| has_tools),
            parallel_tool_calls: parallel.filter(|_| has_tools),
            tools: tools.chat,
            max_tokens: max_output_tokens,
            temperature: present(body.temperature),
            top_p: present(body.top_p),
            response_format,
            reasoning_effort,
        };
        let chat = serde_json::to_vec(&chat).map_err(|e| InvalidRequest {
            message: format!("the request could not be translated: {e}"),
            param: None,
        })?;
        let defaults = Echo::default();
        let echo = Echo {
            instructions: present(body.instructions).map(Echo::keep),
            max_output_tokens,
            parallel_tool_calls: parallel.unwrap_or(true),
            previous_response_id: self.previous_response_id.clone(),
            reasoning: present(body.reasoning).map(Echo::keep),
            store,
            temperature: present(body.temperature).map(Echo::keep),
            top_p: present(body.top_p).map(Echo::keep),
            text: present(body.text).map_or(defaults.text, Echo::keep),
            tool_choice: present(body.tool_choice).map_or(defaults.tool_choice, Echo::keep),
            tools: present(body.tools).map_or(defaults.tools, Echo::keep),
            metadata: present(body.metadata).map_or(defaults.metadata, Echo::keep),
        };
        Ok(Translated {
            chat,
            stream: self.stream,
            turn,
            head: Head {
                id: response_id,
                created_at,
                model: self.model.clone(),
                echo,
                names: tools.names,
            },
        })
    }
}

/// A fresh response id.
pub fn response_id() -> String {
    new_id("resp")
}

/// `text.format` as a chat `response_format` (`json_*` make the request need a json route).
fn response_format(text: Option<&RawValue>) -> Result<Option<ResponseFormat<'_>>, InvalidRequest> {
    let Some(text) = text else {
        return Ok(None);
    };
    let text: TextIn<'_> = serde_json::from_str(text.get())
        .map_err(|_| invalid("`text` must be an object", "text"))?;
    let Some(format) = present(text.format) else {
        return Ok(None);
    };
    let format: FormatIn<'_> = serde_json::from_str(format.get())
        .map_err(|e| invalid(format!("`text.format` is not valid: {e}"), "text.format"))?;
    match format.kind.as_deref() {
        Some("text") | None => Ok(None),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let schema = present(format.schema)
                .ok_or_else(|| invalid("`text.format.schema` is required", "text.format.schema"))?;
            Ok(Some(ResponseFormat::JsonSchema {
                json_schema: JsonSchema {
                    name: Some(format.name.unwrap_or_else(|| "response".into())),
                    schema,
                    description: format.description,
                    strict: format.strict,
                },
            }))
        }
        Some(other) => Err(invalid(
            format!("`text.format.type` must be text, json_object or json_schema; got {other:?}"),
            "text.format.type",
        )),
    }
}

/// `reasoning.effort` in the values chat routes take; `none` leaves the route's default.
fn reasoning_effort(reasoning: Option<&RawValue>) -> Result<Option<&'static str>, InvalidRequest> {
    let Some(reasoning) = reasoning else {
        return Ok(None);
    };
    let reasoning: ReasoningIn = serde_json::from_str(reasoning.get())
        .map_err(|_| invalid("`reasoning` must be an object", "reasoning"))?;
    match reasoning.effort.as_deref() {
        None | Some("none") => Ok(None),
        Some("minimal" | "low") => Ok(Some("low")),
        Some("medium") => Ok(Some("medium")),
        Some("high" | "xhigh") => Ok(Some("high")),
        Some(other) => Err(invalid(
            format!(
                "`reasoning.effort` must be none, minimal, low, medium, high or xhigh; got {other:?}"
            ),
            "reasoning.effort",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(body: &str) -> Result<Value, InvalidRequest> {
        let request = ResponsesRequest::parse(body.as_bytes())?;
        let translated = request.translate(&[], false, "resp_x".into(), 1)?;
        Ok(serde_json::from_slice(&translated.chat).unwrap())
    }

    #[test]
    fn a_plain_request_becomes_a_chat_request() {
        let got = chat(
            r#"{"model":"auto-fast","input":"hi","instructions":"be brief","max_output_tokens":50,
                "temperature":0.2,"top_p":0.9,"stream":true}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            json!({"model":"auto-fast","messages":[{"role":"system","content":"be brief"},
                   {"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},
                   "max_tokens":50,"temperature":0.2,"top_p":0.9})
        );
        assert_eq!(
            chat(r#"{"input":"hi","model":""}"#).unwrap()["model"],
            "auto"
        );
    }

    #[test]
    fn what_codex_sends_is_translated_or_dropped() {
        let got = chat(
            r#"{"model":"auto","instructions":"You are Codex.","input":[
                {"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}],
                "tools":[{"type":"function","name":"shell","description":"d","strict":false,"parameters":{"type":"object"}},
                         {"type":"custom","name":"apply_patch","description":"p","format":{"type":"grammar","syntax":"lark","definition":"x"}},
                         {"type":"web_search"}],
                "tool_choice":"auto","parallel_tool_calls":false,"reasoning":{"effort":"xhigh","summary":"auto"},
                "store":false,"stream":true,"include":["reasoning.encrypted_content"],
                "prompt_cache_key":"thread-1","text":{"verbosity":"low"},"service_tier":"flex",
                "client_metadata":{"x":"y"},"prompt_cache_retention":"24h"}"#,
        )
        .unwrap();
        assert_eq!(got["tools"].as_array().unwrap().len(), 2);
        assert_eq!(got["tool_choice"], "auto");
        assert_eq!(got["parallel_tool_calls"], false);
        assert_eq!(got["reasoning_effort"], "high");
        for dropped in [
            "include",
            "prompt_cache_key",
            "store",
            "service_tier",
            "text",
            "verbosity",
            "response_format",
        ] {
            assert!(got.get(dropped).is_none(), "{dropped}");
        }
    }

    #[test]
    fn text_format_becomes_response_format() {
        let got = chat(
            r#"{"input":"x","text":{"format":{"type":"json_schema","name":"pet","strict":true,
                "schema":{"type":"object","properties":{"name":{"type":"string"}}}}}}"#,
        )
        .unwrap();
        assert_eq!(
            got["response_format"],
            json!({"type":"json_schema","json_schema":{"name":"pet","strict":true,
                   "schema":{"type":"object","properties":{"name":{"type":"string"}}}}})
        );
        let got = chat(r#"{"input":"x","text":{"format":{"type":"json_object"}}}"#).unwrap();
        assert_eq!(got["response_format"], json!({"type":"json_object"}));
        let got = chat(r#"{"input":"x","text":{"format":{"type":"text"}}}"#).unwrap();
        assert!(got.get("response_format").is_none());
    }

    #[test]
    fn tool_settings_are_left_out_when_no_tool_remains() {
        let got = chat(
            r#"{"input":"x","tools":[{"type":"web_search_preview"}],"tool_choice":"auto","parallel_tool_calls":true}"#,
        )
        .unwrap();
        for field in ["tools", "tool_choice", "parallel_tool_calls"] {
            assert!(got.get(field).is_none(), "{field}");
        }
    }

    #[test]
    fn history_comes_between_the_instructions_and_the_new_turn() {
        let request =
            ResponsesRequest::parse(br#"{"input":"and then?","instructions":"new rules"}"#)
                .unwrap();
        let history = vec![
            ChatMessage::text("user", "hi"),
            ChatMessage::text("assistant", "hello"),
        ];
        let translated = request
            .translate(&history, true, "resp_y".into(), 1)
            .unwrap();
        let got: Value = serde_json::from_slice(&translated.chat).unwrap();
        let roles: Vec<&str> = got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(
            translated.turn,
            vec![ChatMessage::text("user", "and then?")]
        );
        assert!(translated.head.echo.store);
    }

    #[test]
    fn bad_bodies_and_unservable_fields_are_refused_naming_the_field() {
        for (body, param) in [
            ("[]", None),
            ("{not json", None),
            (r#"{"input":"x","model":3}"#, Some("model")),
            (r#"{"input":"x","stream":"yes"}"#, Some("stream")),
            (r#"{"input":"x","background":true}"#, Some("background")),
            (
                r#"{"input":"x","conversation":"conv_1"}"#,
                Some("conversation"),
            ),
            (r#"{"input":"x","prompt":{"id":"pmpt_1"}}"#, Some("prompt")),
            (r#"{"input":"x","store":"no"}"#, Some("store")),
        ] {
            let error = ResponsesRequest::parse(body.as_bytes()).err().unwrap();
            assert_eq!(error.param.as_deref(), param, "{body}");
        }
        for (body, param) in [
            (r#"{}"#, "input"),
            (r#"{"input":"x","instructions":["a"]}"#, "instructions"),
            (
                r#"{"input":"x","max_output_tokens":-1}"#,
                "max_output_tokens",
            ),
            (r#"{"input":"x","temperature":"hot"}"#, "temperature"),
            (
                r#"{"input":"x","text":{"format":{"type":"xml"}}}"#,
                "text.format.type",
            ),
            (
                r#"{"input":"x","text":{"format":{"type":"json_schema","name":"n"}}}"#,
                "text.format.schema",
            ),
            (
                r#"{"input":"x","reasoning":{"effort":"max"}}"#,
                "reasoning.effort",
            ),
            (
                r#"{"input":"x","parallel_tool_calls":1}"#,
                "parallel_tool_calls",
            ),
        ] {
            let error = chat(body).unwrap_err();
            assert_eq!(error.param.as_deref(), Some(param), "{body}");
        }
        assert!(chat(r#"{"input":"x","background":false}"#).is_ok());
    }
}
