//! `tools` and `tool_choice` to chat completions' function tools: `input_schema` becomes the
//! function's `parameters` (copied as sent), `any` becomes `required`, a named tool a forced
//! function, `disable_parallel_tool_use` `parallel_tool_calls: false`. Anthropic's own tools
//! (web search, code execution, bash, text editor, computer use, …) run on Anthropic's side or
//! need its trained schemas: no chat route can serve them, so they are refused.

use super::chat::{ChatTool, FunctionDef};
use super::error::InvalidMessages;
use super::read::{is_object, items};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::borrow::Cow;

#[derive(Deserialize)]
struct ToolIn<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input_schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChoiceIn<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

/// The function tools for `tools`.
pub(crate) fn tools(raw: &RawValue) -> Result<Vec<ChatTool<'_>>, InvalidMessages> {
    let mut out = Vec::new();
    for (i, item) in items(raw, "tools")?.into_iter().enumerate() {
        let param = format!("tools[{i}]");
        if !is_object(item) {
            return Err(InvalidMessages::at(param, "must be an object"));
        }
        let tool: ToolIn<'_> = serde_json::from_str(item.get())
            .map_err(|e| InvalidMessages::at(&param, format!("is not a valid tool: {e}")))?;
        match tool.kind.as_deref() {
            None | Some("custom") => {}
            Some(kind) => {
                return Err(InvalidMessages::at(
                    format!("{param}.type"),
                    format!(
                        "{kind:?} is one of Anthropic's own tools, which no chat route can run; \
                         declare it as a custom tool with an `input_schema`"
                    ),
                ));
            }
        }
        let name = tool
            .name
            .ok_or_else(|| InvalidMessages::at(format!("{param}.name"), "field required"))?;
        let parameters = match tool.input_schema {
            Some(schema) if is_object(schema) => schema,
            Some(_) => {
                return Err(InvalidMessages::at(
                    format!("{param}.input_schema"),
                    "must be an object",
                ));
            }
            None => {
                return Err(InvalidMessages::at(
                    format!("{param}.input_schema"),
                    "field required",
                ));
            }
        };
        out.push(ChatTool {
            kind: "function",
            function: FunctionDef {
                name,
                description: tool.description,
                parameters,
            },
        });
    }
    Ok(out)
}

/// `tool_choice` as chat completions' `tool_choice`, and `parallel_tool_calls` when it says.
pub(crate) fn tool_choice(raw: &RawValue) -> Result<(Value, Option<bool>), InvalidMessages> {
    if !is_object(raw) {
        return Err(InvalidMessages::at("tool_choice", "must be an object"));
    }
    let choice: ChoiceIn<'_> = serde_json::from_str(raw.get())
        .map_err(|e| InvalidMessages::at("tool_choice", format!("is not valid: {e}")))?;
    let parallel = choice.disable_parallel_tool_use.map(|disable| !disable);
    let translated = match choice.kind.as_deref() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice.name.ok_or_else(|| {
                InvalidMessages::at("tool_choice.name", "field required for type `tool`")
            })?;
            json!({"type": "function", "function": {"name": name}})
        }
        Some(other) => {
            return Err(InvalidMessages::at(
                "tool_choice.type",
                format!("must be one of `auto`, `any`, `tool`, `none`; got {other:?}"),
            ));
        }
        None => return Err(InvalidMessages::at("tool_choice.type", "field required")),
    };
    Ok((translated, parallel))
}
