//! A Messages request body to a chat completions body (see the table in the module doc).

use super::chat::{ChatBody, JsonSchema, ResponseFormat};
use super::content;
use super::error::InvalidMessages;
use super::models::{ResolvedModel, resolve_model};
use super::read::{Fields, is_object, items, string, typed};
use super::tools;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A translated request.
#[derive(Clone, Debug)]
pub struct Translated {
    /// The chat completions body, for `ChatRequest::parse`.
    pub body: Vec<u8>,
    pub stream: bool,
    pub asked: Asked,
}

/// What of the Messages request the answer's translation needs.
#[derive(Clone, Debug)]
pub struct Asked {
    pub model: ResolvedModel,
    /// `stop_sequences`: which one ended the answer is `stop_sequence` in the reply.
    pub stop_sequences: Vec<String>,
}

#[derive(Deserialize)]
struct MetadataIn<'a> {
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct OutputConfigIn<'a> {
    #[serde(borrow, default)]
    format: Option<&'a RawValue>,
    #[serde(borrow, default)]
    effort: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ThinkingIn<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    budget_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct FormatIn<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
}

/// Translates a Messages (or count_tokens) body; `tiers` maps Claude names (`[anthropic] models`).
pub fn translate_request(
    bytes: &[u8],
    tiers: &BTreeMap<String, String>,
) -> Result<Translated, InvalidMessages> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| InvalidMessages::body(format!("the request body is not valid UTF-8: {e}")))?;
    let fields = Fields::of(text, "the request body")?;

    let requested = match fields.get("model") {
        Some(raw) => string(raw, "model")?,
        None => Cow::Borrowed(""),
    };
    let model = resolve_model(&requested, tiers);

    let mut messages = Vec::new();
    if let Some(raw) = fields.get("system") {
        messages.extend(content::system(raw)?);
    }
    content::messages(fields.get("messages"), &mut messages)?;

    let max_tokens = match fields.get("max_tokens") {
        None => None,
        Some(raw) => match typed::<u64>(raw, "max_tokens", "a positive integer")? {
            0 => return Err(InvalidMessages::at("max_tokens", "must be at least 1")),
            n => Some(n),
        },
    };
    let stream = match fields.get("stream") {
        None => false,
        Some(raw) => typed::<bool>(raw, "stream", "a boolean")?,
    };
    let number = |name: &str| {
        fields
            .get(name)
            .map(|raw| typed::<f64>(raw, name, "a number"))
            .transpose()
    };
    let temperature = number("temperature")?;
    let top_p = number("top_p")?;
    let stop_sequences = match fields.get("stop_sequences") {
        None => Vec::new(),
        Some(raw) => items(raw, "stop_sequences")?
            .into_iter()
            .enumerate()
            .map(|(i, item)| string(item, &format!("stop_sequences[{i}]")).map(Cow::into_owned))
            .collect::<Result<Vec<_>, _>>()?,
    };

    let tools = fields.get("tools").map(tools::tools).transpose()?;
    let tools = tools.filter(|t| !t.is_empty());
    let (tool_choice, parallel_tool_calls) = match fields.get("tool_choice") {
        Some(raw) => {
            let (choice, parallel) = tools::tool_choice(raw)?;
            (Some(choice), parallel)
        }
        None => (None, None),
    };
    // Chat completions refuses a tool choice without tools; Anthropic ignores it.
    let (tool_choice, parallel_tool_calls) = match tools {
        Some(_) => (tool_choice, parallel_tool_calls),
        None => (None, None),
    };

    let user = match fields.get("metadata") {
        None => None,
        Some(raw) if is_object(raw) => {
            typed::<MetadataIn<'_>>(raw, "metadata", "an object with a string `user_id`")?.user_id
        }
        Some(_) => return Err(InvalidMessages::at("metadata", "must be an object")),
    };
    let output_config = fields.get("output_config");
    let response_format = output_config.map(output_format).transpose()?.flatten();
    let reasoning_effort = reasoning_effort(fields.get("thinking"), output_config);
    if let Some(raw) = fields.get("mcp_servers")
        && !items(raw, "mcp_servers")?.is_empty()
    {
        return Err(InvalidMessages::at(
            "mcp_servers",
            "MCP servers are connected by Anthropic's side, which no chat route has; \
             without them the model would miss their tools",
        ));
    }

    let body = ChatBody {
        model: model.model.clone(),
        messages,
        max_tokens,
        stream,
        stream_options: stream.then(|| json!({"include_usage": true})),
        temperature,
        top_p,
        stop: (!stop_sequences.is_empty()).then(|| stop_sequences.clone()),
        tools,
        tool_choice,
        parallel_tool_calls,
        user,
        response_format,
        reasoning_effort,
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| InvalidMessages::body(format!("the request could not be translated: {e}")))?;
    Ok(Translated {
        body,
        stream,
        asked: Asked {
            model,
            stop_sequences,
        },
    })
}

/// `output_config.format` (structured outputs) as `response_format`.
fn output_format(raw: &RawValue) -> Result<Option<ResponseFormat<'_>>, InvalidMessages> {
    if !is_object(raw) {
        return Err(InvalidMessages::at("output_config", "must be an object"));
    }
    let config: OutputConfigIn<'_> = typed(raw, "output_config", "an object")?;
    let Some(format) = config.format.filter(|f| f.get() != "null") else {
        return Ok(None);
    };
    let format: FormatIn<'_> = typed(format, "output_config.format", "an object")?;
    match (format.kind.as_deref(), format.schema) {
        (Some("json_schema"), Some(schema)) if is_object(schema) => Ok(Some(ResponseFormat {
            kind: "json_schema",
            json_schema: JsonSchema {
                name: "output",
                schema,
                strict: true,
            },
        })),
        (Some("json_schema"), _) => Err(InvalidMessages::at(
            "output_config.format.schema",
            "must be a JSON schema object",
        )),
        _ => Err(InvalidMessages::at(
            "output_config.format.type",
            "must be `json_schema`",
        )),
    }
}

/// `output_config.effort`, else a `thinking` budget, as chat completions' `reasoning_effort` (which
/// the engine sends only to routes tagged `reasoning`). Adaptive or disabled thinking, and values
/// it does not know, leave each route to its default.
fn reasoning_effort(
    thinking: Option<&RawValue>,
    output_config: Option<&RawValue>,
) -> Option<&'static str> {
    let effort = output_config
        .and_then(|raw| serde_json::from_str::<OutputConfigIn<'_>>(raw.get()).ok())
        .and_then(|config| config.effort);
    match effort.as_deref() {
        Some("low") => return Some("low"),
        Some("medium") => return Some("medium"),
        Some("high" | "xhigh" | "max") => return Some("high"),
        _ => {}
    }
    let thinking: ThinkingIn<'_> = serde_json::from_str(thinking?.get()).ok()?;
    match (thinking.kind.as_deref(), thinking.budget_tokens) {
        (Some("enabled"), Some(budget)) if budget <= 4096 => Some("low"),
        (Some("enabled"), Some(budget)) if budget <= 16384 => Some("medium"),
        (Some("enabled"), _) => Some("high"),
        _ => None,
    }
}
