//! `system` and `messages` to chat messages: text and image blocks to content parts, `tool_use`
//! blocks to an assistant turn's tool calls, `tool_result` blocks to `tool` messages (placed
//! first, as chat completions wants them right after the calls); thinking blocks and
//! `cache_control` dropped; blocks with no chat equivalent refused, naming the block.

use super::chat::{ChatMessage, Content, FunctionCall, ImageUrl, Part, ToolCall};
use super::error::InvalidMessages;
use super::read::{is_object, items, string};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// One content block, the fields any block type uses (the rest is skipped unread).
#[derive(Deserialize)]
struct BlockIn<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(borrow, default)]
    title: Option<Cow<'a, str>>,
}

/// An image's or a document's `source`.
#[derive(Deserialize)]
struct SourceIn<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    media_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(borrow, default)]
    role: Option<&'a RawValue>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// How the texts of several blocks of one turn are joined into one string.
const BLOCK_SEPARATOR: &str = "\n\n";

/// `system`: a string, or text blocks (joined); `None` when empty.
pub(crate) fn system(raw: &RawValue) -> Result<Option<ChatMessage<'static>>, InvalidMessages> {
    let text = match raw.get().as_bytes().first() {
        Some(b'"') => string(raw, "system")?.into_owned(),
        Some(b'[') => {
            let mut texts = Vec::new();
            for (i, item) in items(raw, "system")?.into_iter().enumerate() {
                let param = format!("system[{i}]");
                let block = block(item, &param)?;
                match block.kind.as_deref() {
                    Some("text") => texts.push(block.text.unwrap_or_default()),
                    _ => {
                        return Err(InvalidMessages::at(
                            format!("{param}.type"),
                            "system blocks must be of type `text`",
                        ));
                    }
                }
            }
            texts.join(BLOCK_SEPARATOR)
        }
        _ => {
            return Err(InvalidMessages::at(
                "system",
                "must be a string or an array of text blocks",
            ));
        }
    };
    Ok((!text.is_empty()).then(|| ChatMessage::text("system", text)))
}

/// `messages`, appended to `out` as chat messages.
pub(crate) fn messages<'a>(
    raw: Option<&'a RawValue>,
    out: &mut Vec<ChatMessage<'a>>,
) -> Result<(), InvalidMessages> {
    let Some(raw) = raw else {
        return Err(InvalidMessages::at("messages", "field required"));
    };
    let list = items(raw, "messages")?;
    if list.is_empty() {
        return Err(InvalidMessages::at(
            "messages",
            "must hold at least one message",
        ));
    }
    for (i, item) in list.into_iter().enumerate() {
        let param = format!("messages[{i}]");
        if !is_object(item) {
            return Err(InvalidMessages::at(param, "must be an object"));
        }
        let message: MessageIn<'a> = serde_json::from_str(item.get())
            .map_err(|_| InvalidMessages::at(&param, "must be an object"))?;
        let role_param = format!("{param}.role");
        let role = match message.role {
            None => return Err(InvalidMessages::at(role_param, "field required")),
            Some(role) => string(role, &role_param)?,
        };
        let content_param = format!("{param}.content");
        let Some(content) = message.content else {
            return Err(InvalidMessages::at(content_param, "field required"));
        };
        let blocks = match content.get().as_bytes().first() {
            Some(b'"') => Blocks::Text(string(content, &content_param)?),
            Some(b'[') => Blocks::List(items(content, &content_param)?),
            _ => {
                return Err(InvalidMessages::at(
                    content_param,
                    "must be a string or an array of content blocks",
                ));
            }
        };
        match role.as_ref() {
            "user" => user_turn(blocks, &content_param, out)?,
            "assistant" => assistant_turn(blocks, &content_param, out)?,
            other => {
                return Err(InvalidMessages::at(
                    role_param,
                    format!("must be `user` or `assistant`, not {other:?}"),
                ));
            }
        }
    }
    Ok(())
}

enum Blocks<'a> {
    Text(Cow<'a, str>),
    List(Vec<&'a RawValue>),
}

fn block<'a>(raw: &'a RawValue, param: &str) -> Result<BlockIn<'a>, InvalidMessages> {
    if !is_object(raw) {
        return Err(InvalidMessages::at(param, "must be a content block object"));
    }
    let block: BlockIn<'a> = serde_json::from_str(raw.get())
        .map_err(|e| InvalidMessages::at(param, format!("is not a valid content block: {e}")))?;
    if block.kind.is_none() {
        return Err(InvalidMessages::at(
            format!("{param}.type"),
            "field required",
        ));
    }
    Ok(block)
}

/// Block types that carry only the model's own reasoning: chat completions has nowhere to put
/// them back, and the answer does not depend on them.
fn is_thinking(kind: &str) -> bool {
    matches!(kind, "thinking" | "redacted_thinking")
}

fn user_turn<'a>(
    blocks: Blocks<'a>,
    param: &str,
    out: &mut Vec<ChatMessage<'a>>,
) -> Result<(), InvalidMessages> {
    let list = match blocks {
        Blocks::Text(text) => {
            out.push(ChatMessage::text("user", text.into_owned()));
            return Ok(());
        }
        Blocks::List(list) => list,
    };
    let mut parts = Vec::new();
    for (j, raw) in list.into_iter().enumerate() {
        let param = format!("{param}[{j}]");
        let block = block(raw, &param)?;
        match block.kind.as_deref().unwrap_or_default() {
            "text" => parts.push(Part::Text {
                text: block.text.unwrap_or_default(),
            }),
            "image" => parts.push(image(block.source, &param)?),
            "document" => parts.push(document(&block, &param)?),
            "tool_result" => {
                let (message, images) = tool_result(block, &param)?;
                out.push(message);
                parts.extend(images);
            }
            kind if is_thinking(kind) => {}
            kind => return Err(unsupported(&param, kind)),
        }
    }
    if !parts.is_empty() {
        out.push(ChatMessage {
            role: "user",
            content: Some(joined(parts)),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    }
    Ok(())
}

fn assistant_turn<'a>(
    blocks: Blocks<'a>,
    param: &str,
    out: &mut Vec<ChatMessage<'a>>,
) -> Result<(), InvalidMessages> {
    let list = match blocks {
        Blocks::Text(text) => {
            out.push(ChatMessage::text("assistant", text.into_owned()));
            return Ok(());
        }
        Blocks::List(list) => list,
    };
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for (j, raw) in list.into_iter().enumerate() {
        let param = format!("{param}[{j}]");
        let block = block(raw, &param)?;
        match block.kind.as_deref().unwrap_or_default() {
            "text" => texts.push(block.text.unwrap_or_default()),
            "tool_use" => {
                let id = block
                    .id
                    .ok_or_else(|| InvalidMessages::at(format!("{param}.id"), "field required"))?;
                let name = block.name.ok_or_else(|| {
                    InvalidMessages::at(format!("{param}.name"), "field required")
                })?;
                let arguments = match block.input {
                    None => "{}",
                    Some(input) if is_object(input) => input.get(),
                    Some(_) => {
                        return Err(InvalidMessages::at(
                            format!("{param}.input"),
                            "must be an object",
                        ));
                    }
                };
                tool_calls.push(ToolCall {
                    id,
                    kind: "function",
                    function: FunctionCall { name, arguments },
                });
            }
            kind if is_thinking(kind) => {}
            kind => return Err(unsupported(&param, kind)),
        }
    }
    let text = texts.join(BLOCK_SEPARATOR);
    if text.is_empty() && tool_calls.is_empty() {
        // Only thinking: nothing a chat model can be shown.
        return Ok(());
    }
    out.push(ChatMessage {
        role: "assistant",
        content: (!text.is_empty()).then_some(Content::Text(text)),
        tool_calls,
        tool_call_id: None,
    });
    Ok(())
}

/// A `tool_result` block: a `tool` message with its text, and the images it held (a tool message
/// cannot carry images; they follow in the user turn).
fn tool_result<'a>(
    block: BlockIn<'a>,
    param: &str,
) -> Result<(ChatMessage<'a>, Vec<Part<'a>>), InvalidMessages> {
    let id = block
        .tool_use_id
        .ok_or_else(|| InvalidMessages::at(format!("{param}.tool_use_id"), "field required"))?;
    let content_param = format!("{param}.content");
    let mut texts = Vec::new();
    let mut images = Vec::new();
    match block.content {
        None => {}
        Some(raw) if raw.get().starts_with('"') => texts.push(string(raw, &content_param)?),
        Some(raw) if raw.get().starts_with('[') => {
            for (k, item) in items(raw, &content_param)?.into_iter().enumerate() {
                let param = format!("{content_param}[{k}]");
                let inner = self::block(item, &param)?;
                match inner.kind.as_deref().unwrap_or_default() {
                    "text" => texts.push(inner.text.unwrap_or_default()),
                    "image" => images.push(image(inner.source, &param)?),
                    "document" => match document(&inner, &param)? {
                        Part::Text { text } => texts.push(text),
                        image @ Part::ImageUrl { .. } => images.push(image),
                    },
                    kind => return Err(unsupported(&param, kind)),
                }
            }
        }
        Some(_) => {
            return Err(InvalidMessages::at(
                content_param,
                "must be a string or an array of content blocks",
            ));
        }
    }
    let mut text = texts.join("\n");
    if block.is_error == Some(true) {
        // Chat completions has no error flag on a tool result: say it in the text.
        text.insert_str(0, "Error: ");
    }
    let message = ChatMessage {
        role: "tool",
        content: Some(Content::Text(text)),
        tool_calls: Vec::new(),
        tool_call_id: Some(id),
    };
    Ok((message, images))
}

fn source<'a>(raw: Option<&'a RawValue>, param: &str) -> Result<SourceIn<'a>, InvalidMessages> {
    let param = format!("{param}.source");
    let Some(raw) = raw.filter(|r| is_object(r)) else {
        return Err(InvalidMessages::at(param, "must be an object"));
    };
    serde_json::from_str(raw.get())
        .map_err(|e| InvalidMessages::at(param, format!("is not a valid source: {e}")))
}

/// An image block: base64 data as a `data:` URL, or its URL.
fn image<'a>(raw: Option<&'a RawValue>, param: &str) -> Result<Part<'a>, InvalidMessages> {
    let source = source(raw, param)?;
    let field =
        |name: &str| InvalidMessages::at(format!("{param}.source.{name}"), "field required");
    let url = match source.kind.as_deref() {
        Some("base64") => {
            let media_type = source.media_type.ok_or_else(|| field("media_type"))?;
            let data = source.data.ok_or_else(|| field("data"))?;
            format!("data:{media_type};base64,{data}")
        }
        Some("url") => source.url.ok_or_else(|| field("url"))?.into_owned(),
        _ => {
            return Err(InvalidMessages::at(
                format!("{param}.source.type"),
                "only `base64` and `url` image sources can be served (files are not stored here)",
            ));
        }
    };
    Ok(Part::ImageUrl {
        image_url: ImageUrl { url },
    })
}

/// A document block: plain text (or text blocks) as text; a PDF cannot be read by a chat route.
fn document<'a>(block: &BlockIn<'a>, param: &str) -> Result<Part<'a>, InvalidMessages> {
    let source = source(block.source, param)?;
    let body = match source.kind.as_deref() {
        Some("text") => source.data.map(Cow::into_owned).unwrap_or_default(),
        Some("content") => {
            let content_param = format!("{param}.source.content");
            match source.content {
                Some(raw) if raw.get().starts_with('"') => {
                    string(raw, &content_param)?.into_owned()
                }
                Some(raw) => {
                    let mut texts = Vec::new();
                    for (k, item) in items(raw, &content_param)?.into_iter().enumerate() {
                        let param = format!("{content_param}[{k}]");
                        let inner = self::block(item, &param)?;
                        match inner.kind.as_deref().unwrap_or_default() {
                            "text" => texts.push(inner.text.unwrap_or_default()),
                            kind => return Err(unsupported(&param, kind)),
                        }
                    }
                    texts.join(BLOCK_SEPARATOR)
                }
                None => String::new(),
            }
        }
        _ => {
            return Err(InvalidMessages::at(
                format!("{param}.source.type"),
                "only plain-text documents can be served; a chat route cannot read a PDF",
            ));
        }
    };
    let text = match &block.title {
        Some(title) => format!("{title}\n\n{body}"),
        None => body,
    };
    Ok(Part::Text {
        text: Cow::Owned(text),
    })
}

/// Text-only content as one string (what every chat route takes), else the parts.
fn joined(parts: Vec<Part<'_>>) -> Content<'_> {
    if parts.iter().all(|p| matches!(p, Part::Text { .. })) {
        let texts: Vec<_> = parts
            .into_iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text),
                Part::ImageUrl { .. } => None,
            })
            .collect();
        return Content::Text(texts.join(BLOCK_SEPARATOR));
    }
    Content::Parts(parts)
}

fn unsupported(param: &str, kind: &str) -> InvalidMessages {
    InvalidMessages::at(
        format!("{param}.type"),
        format!(
            "content blocks of type {kind:?} cannot be served through chat routes; dropping it would change the answer"
        ),
    )
}
