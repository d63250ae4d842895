//! `input` (a string, or items) as chat messages: messages keep their role (`developer` becomes
//! `system`), function and custom tool calls join the assistant turn they belong to, their outputs
//! become `tool` messages, reasoning and search records are dropped. See the module doc of
//! [`super`] for every item type.

use super::invalid;
use super::tools::ToolNames;
use crate::api::bounded;
use crate::routing::InvalidRequest;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One chat message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ChatToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn text(role: &str, text: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            content: Some(Content::Text(text.into())),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum Part {
    #[serde(rename = "text")]
    Text { text: String },
    #[serde(rename = "image_url")]
    Image { image_url: ImageUrl },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub function: ChatCall,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatCall {
    pub name: String,
    pub arguments: String,
}

/// Item types with nothing chat completions could carry, whose loss leaves the answer as it was:
/// dropped.
const DROPPED_ITEMS: &[&str] = &["reasoning", "web_search_call", "image_generation_call"];

#[derive(Deserialize)]
struct ItemIn<'a> {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
    #[serde(default)]
    input: Option<String>,
    #[serde(default, borrow)]
    output: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PartIn {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// Messages being built, with the images of tool outputs waiting for the tool turn to end (a
/// `tool` message holds text only; the images follow it as a user message).
struct Builder<'n> {
    messages: Vec<ChatMessage>,
    pending_images: Vec<Part>,
    names: &'n ToolNames,
}

impl Builder<'_> {
    fn flush_images(&mut self) {
        if !self.pending_images.is_empty() {
            let parts = std::mem::take(&mut self.pending_images);
            self.messages.push(ChatMessage {
                role: "user".into(),
                content: Some(Content::Parts(parts)),
                tool_calls: Vec::new(),
                tool_call_id: None,
            });
        }
    }

    fn push(&mut self, message: ChatMessage) {
        if message.role != "tool" {
            self.flush_images();
        }
        self.messages.push(message);
    }

    /// A call joins the assistant turn just before it, or starts one.
    fn push_call(&mut self, call: ChatToolCall) {
        self.flush_images();
        match self.messages.last_mut() {
            Some(last) if last.role == "assistant" => last.tool_calls.push(call),
            _ => self.messages.push(ChatMessage {
                role: "assistant".into(),
                content: None,
                tool_calls: vec![call],
                tool_call_id: None,
            }),
        }
    }
}

/// Translates `input` (required: a string or an array of items).
pub fn translate(
    raw: Option<&RawValue>,
    names: &ToolNames,
) -> Result<Vec<ChatMessage>, InvalidRequest> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Err(invalid("`input` is required", "input"));
    };
    if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
        return Ok(vec![ChatMessage::text("user", text)]);
    }
    let items = bounded::items(raw).ok_or_else(|| {
        invalid(
            format!(
                "`input` must be a string or an array of at most {} items",
                bounded::MAX_ITEMS
            ),
            "input",
        )
    })?;
    let mut builder = Builder {
        messages: Vec::with_capacity(items.len()),
        pending_images: Vec::new(),
        names,
    };
    for (i, item) in items.into_iter().enumerate() {
        translate_item(&mut builder, item, &format!("input[{i}]"))?;
    }
    builder.flush_images();
    Ok(builder.messages)
}

fn translate_item(b: &mut Builder<'_>, raw: &RawValue, param: &str) -> Result<(), InvalidRequest> {
    let item: ItemIn<'_> = serde_json::from_str(raw.get())
        .map_err(|e| invalid(format!("`{param}` is not a valid input item: {e}"), param))?;
    let kind = match (&item.kind, &item.role) {
        (Some(kind), _) => kind.as_str(),
        (None, Some(_)) => "message",
        (None, None) => {
            return Err(invalid(
                format!("`{param}.type` is required"),
                &format!("{param}.type"),
            ));
        }
    };
    let required = |value: &Option<String>, field: &str| {
        value.clone().ok_or_else(|| {
            invalid(
                format!("`{param}.{field}` is required (a string)"),
                &format!("{param}.{field}"),
            )
        })
    };
    match kind {
        "message" => {
            let message = message(&item, param)?;
            b.push(message);
        }
        "function_call" => {
            let name = required(&item.name, "name")?;
            b.push_call(ChatToolCall {
                id: required(&item.call_id, "call_id")?,
                kind: "function".into(),
                function: ChatCall {
                    name: b.names.chat_name(&name, item.namespace.as_deref()),
                    arguments: item.arguments.clone().unwrap_or_else(|| "{}".into()),
                },
            });
        }
        "custom_tool_call" => {
            let name = required(&item.name, "name")?;
            let input = required(&item.input, "input")?;
            b.push_call(ChatToolCall {
                id: required(&item.call_id, "call_id")?,
                kind: "function".into(),
                function: ChatCall {
                    name: b.names.chat_name(&name, item.namespace.as_deref()),
                    arguments: serde_json::json!({ "input": input }).to_string(),
                },
            });
        }
        "function_call_output" | "custom_tool_call_output" => {
            let call_id = required(&item.call_id, "call_id")?;
            let text = tool_output(b, item.output, &format!("{param}.output"))?;
            b.push(ChatMessage {
                role: "tool".into(),
                content: Some(Content::Text(text)),
                tool_calls: Vec::new(),
                tool_call_id: Some(call_id),
            });
        }
        kind if DROPPED_ITEMS.contains(&kind) => {}
        "item_reference" => {
            return Err(invalid(
                format!(
                    "`{param}` refers to a stored item; this gateway keeps no items: send the item itself"
                ),
                param,
            ));
        }
        "compaction" | "compaction_summary" => {
            return Err(invalid(
                format!(
                    "`{param}` is an encrypted compaction only OpenAI can read; without it the \
                     conversation would lose its start. Compact the history locally instead"
                ),
                &format!("{param}.type"),
            ));
        }
        other => {
            return Err(invalid(
                format!(
                    "`{param}.type` {other:?} is not served here: input items are messages, \
                     function and custom tool calls and their outputs (reasoning and search records are dropped)"
                ),
                &format!("{param}.type"),
            ));
        }
    }
    Ok(())
}

fn message(item: &ItemIn<'_>, param: &str) -> Result<ChatMessage, InvalidRequest> {
    let role = match item.role.as_deref() {
        Some("developer" | "system") => "system",
        Some("user") => "user",
        Some("assistant") => "assistant",
        Some(other) => {
            return Err(invalid(
                format!(
                    "`{param}.role` must be user, assistant, system or developer; got {other:?}"
                ),
                &format!("{param}.role"),
            ));
        }
        None => {
            return Err(invalid(
                format!("`{param}.role` is required"),
                &format!("{param}.role"),
            ));
        }
    };
    let content_param = format!("{param}.content");
    let Some(content) = item.content.filter(|c| c.get() != "null") else {
        return Err(invalid(
            format!("`{content_param}` is required"),
            &content_param,
        ));
    };
    if let Ok(text) = serde_json::from_str::<String>(content.get()) {
        return Ok(ChatMessage::text(role, text));
    }
    let parts = bounded::items(content).ok_or_else(|| {
        invalid(
            format!("`{content_param}` must be a string or an array of content parts"),
            &content_param,
        )
    })?;
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        out.push(content_part(part, &format!("{content_param}[{j}]"))?);
    }
    let has_images = out.iter().any(|p| matches!(p, Part::Image { .. }));
    if has_images && role != "user" {
        return Err(invalid(
            format!("`{content_param}` holds an image; only user messages may"),
            &content_param,
        ));
    }
    // Text only: one string, which every provider takes for every role.
    Ok(if has_images {
        ChatMessage {
            content: Some(Content::Parts(out)),
            ..ChatMessage::text(role, "")
        }
    } else {
        ChatMessage::text(role, joined_text(&out))
    })
}

fn joined_text(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Text { text } => Some(text.as_str()),
            Part::Image { .. } => None,
        })
        .collect::<Vec<_>>()
        .join("")
}

fn content_part(raw: &RawValue, param: &str) -> Result<Part, InvalidRequest> {
    let part: PartIn = serde_json::from_str(raw.get())
        .map_err(|e| invalid(format!("`{param}` is not a valid content part: {e}"), param))?;
    match part.kind.as_deref() {
        Some("input_text" | "output_text" | "text" | "summary_text" | "reasoning_text") => {
            Ok(Part::Text {
                text: part.text.unwrap_or_default(),
            })
        }
        Some("refusal") => Ok(Part::Text {
            text: part.refusal.unwrap_or_default(),
        }),
        Some("input_image") => match (part.image_url, part.file_id) {
            (Some(url), _) => Ok(Part::Image {
                image_url: ImageUrl {
                    url,
                    detail: part.detail.filter(|d| d != "auto"),
                },
            }),
            (None, _) => Err(invalid(
                format!(
                    "`{param}` names an uploaded file; this gateway has no files: send `image_url` (a URL or a data: URL)"
                ),
                param,
            )),
        },
        Some("input_file") => Err(invalid(
            format!(
                "`{param}`: file inputs are not served by the free chat routes; send the text instead"
            ),
            param,
        )),
        Some(other) => Err(invalid(
            format!("`{param}.type` {other:?} is not a content part this gateway serves"),
            &format!("{param}.type"),
        )),
        None => Err(invalid(
            format!("`{param}.type` is required"),
            &format!("{param}.type"),
        )),
    }
}

/// A tool output as text; its images wait to follow the tool turn.
fn tool_output(
    b: &mut Builder<'_>,
    raw: Option<&RawValue>,
    param: &str,
) -> Result<String, InvalidRequest> {
    let Some(raw) = raw else {
        return Err(invalid(format!("`{param}` is required"), param));
    };
    if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
        return Ok(text);
    }
    let parts = bounded::items(raw).ok_or_else(|| {
        invalid(
            format!("`{param}` must be a string or an array of content parts"),
            param,
        )
    })?;
    let mut texts = Vec::new();
    for (j, part) in parts.into_iter().enumerate() {
        match content_part(part, &format!("{param}[{j}]"))? {
            Part::Text { text } => texts.push(text),
            image @ Part::Image { .. } => {
                texts.push("(image attached in the next message)".into());
                b.pending_images.push(image);
            }
        }
    }
    Ok(texts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn messages(input: &str) -> Result<Value, InvalidRequest> {
        let raw: &RawValue = serde_json::from_str(input).unwrap();
        translate(Some(raw), &ToolNames::default()).map(|m| serde_json::to_value(m).unwrap())
    }

    #[test]
    fn a_string_is_one_user_message() {
        assert_eq!(
            messages(r#""hi""#).unwrap(),
            json!([{"role": "user", "content": "hi"}])
        );
    }

    #[test]
    fn a_codex_history_becomes_a_chat_conversation() {
        let input = r#"[
          {"type":"message","role":"developer","content":[{"type":"input_text","text":"be careful"}]},
          {"type":"message","role":"user","content":[{"type":"input_text","text":"fix it"},
                                                    {"type":"input_image","image_url":"data:image/png;base64,AA","detail":"auto"}]},
          {"type":"reasoning","summary":[],"content":null,"encrypted_content":"gAAAA"},
          {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Looking."}],"phase":"commentary"},
          {"type":"function_call","name":"shell","arguments":"{\"cmd\":\"ls\"}","call_id":"call_1"},
          {"type":"custom_tool_call","name":"apply_patch","input":"*** Begin Patch","call_id":"call_2","status":"completed"},
          {"type":"function_call_output","call_id":"call_1","output":"a.rs"},
          {"type":"custom_tool_call_output","call_id":"call_2","output":[{"type":"input_text","text":"done"},
                                                                    {"type":"input_image","image_url":"https://x/y.png"}]},
          {"role":"user","content":"thanks"}
        ]"#;
        let got = messages(input).unwrap();
        assert_eq!(
            got,
            json!([
              {"role":"system","content":"be careful"},
              {"role":"user","content":[{"type":"text","text":"fix it"},
                                        {"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}}]},
              {"role":"assistant","content":"Looking.","tool_calls":[
                 {"id":"call_1","type":"function","function":{"name":"shell","arguments":"{\"cmd\":\"ls\"}"}},
                 {"id":"call_2","type":"function","function":{"name":"apply_patch","arguments":"{\"input\":\"*** Begin Patch\"}"}}]},
              {"role":"tool","content":"a.rs","tool_call_id":"call_1"},
              {"role":"tool","content":"done\n(image attached in the next message)","tool_call_id":"call_2"},
              {"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},
              {"role":"user","content":"thanks"}
            ])
        );
    }

    #[test]
    fn items_that_cannot_be_carried_are_refused_naming_them() {
        for (input, param) in [
            ("5", "input"),
            ("[3]", "input[0]"),
            (r#"[{"content":"x"}]"#, "input[0].type"),
            (r#"[{"role":"boss","content":"x"}]"#, "input[0].role"),
            (r#"[{"role":"user"}]"#, "input[0].content"),
            (
                r#"[{"role":"user","content":[{"type":"input_audio"}]}]"#,
                "input[0].content[0].type",
            ),
            (
                r#"[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]"#,
                "input[0].content[0]",
            ),
            (
                r#"[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]"#,
                "input[0].content[0]",
            ),
            (
                r#"[{"role":"system","content":[{"type":"input_image","image_url":"u"}]}]"#,
                "input[0].content",
            ),
            (
                r#"[{"type":"function_call","name":"f","arguments":"{}"}]"#,
                "input[0].call_id",
            ),
            (
                r#"[{"type":"function_call_output","call_id":"c"}]"#,
                "input[0].output",
            ),
            (r#"[{"type":"item_reference","id":"msg_1"}]"#, "input[0]"),
            (
                r#"[{"type":"compaction","encrypted_content":"x"}]"#,
                "input[0].type",
            ),
            (
                r#"[{"type":"local_shell_call","call_id":"c"}]"#,
                "input[0].type",
            ),
        ] {
            let error = messages(input).unwrap_err();
            assert_eq!(error.param.as_deref(), Some(param), "{input}");
        }
        let padded = format!("[{}0]", "0,".repeat(bounded::MAX_ITEMS));
        assert_eq!(
            messages(&padded).unwrap_err().param.as_deref(),
            Some("input")
        );
        let parts = format!(
            r#"[{{"role":"user","content":[{}0]}}]"#,
            "0,".repeat(bounded::MAX_ITEMS)
        );
        assert_eq!(
            messages(&parts).unwrap_err().param.as_deref(),
            Some("input[0].content")
        );
        let raw: &RawValue = serde_json::from_str("null").unwrap();
        assert_eq!(
            translate(Some(raw), &ToolNames::default())
                .unwrap_err()
                .param
                .as_deref(),
            Some("input")
        );
    }
}
