//! `tools` and `tool_choice`: function tools as chat functions, custom (freeform) tools as a
//! function taking one string, namespaces flattened; hosted tools dropped or refused. The names
//! chat sees are remembered, so a call coming back is given its Responses kind and namespace.

use super::invalid;
use crate::api::bounded;
use crate::routing::InvalidRequest;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Hosted tools the model may use or not: dropped, the model answers without them.
const DROPPED_TOOLS: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_2025_08_26",
    "web_search_preview_2025_03_11",
    "image_generation",
    "tool_search",
];

/// What a function name the upstream sees stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolName {
    pub custom: bool,
    pub name: String,
    pub namespace: Option<String>,
}

/// The chat names of the request's tools.
#[derive(Clone, Debug, Default)]
pub struct ToolNames(BTreeMap<String, ToolName>);

impl ToolNames {
    /// The tool a chat function call names (a plain function when the request declared none such).
    pub fn lookup(&self, chat_name: &str) -> ToolName {
        self.0.get(chat_name).cloned().unwrap_or_else(|| ToolName {
            custom: false,
            name: chat_name.to_string(),
            namespace: None,
        })
    }

    /// The chat name of a Responses tool (a call in the input names it this way).
    pub fn chat_name(&self, name: &str, namespace: Option<&str>) -> String {
        self.0
            .iter()
            .find(|(_, tool)| tool.name == name && tool.namespace.as_deref() == namespace)
            .map_or_else(|| name.to_string(), |(chat, _)| chat.clone())
    }

    /// Whether a custom tool of this Responses name was declared.
    pub fn is_custom(&self, chat_name: &str) -> bool {
        self.0.get(chat_name).is_some_and(|t| t.custom)
    }

    fn add(&mut self, tool: ToolName) -> String {
        let mut chat = tool.name.clone();
        if self.0.contains_key(&chat)
            && let Some(namespace) = &tool.namespace
        {
            chat = format!("{namespace}__{}", tool.name);
        }
        self.0.insert(chat.clone(), tool);
        chat
    }
}

/// One chat tool.
#[derive(Serialize)]
pub struct ChatTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction<'a>,
}

#[derive(Serialize)]
struct ChatFunction<'a> {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Parameters<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Parameters<'a> {
    Raw(&'a RawValue),
    Built(Value),
}

#[derive(Deserialize)]
struct ToolIn<'a> {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, borrow)]
    parameters: Option<&'a RawValue>,
    #[serde(default)]
    strict: Option<bool>,
    #[serde(default)]
    format: Option<FormatIn>,
    #[serde(default, borrow)]
    tools: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct FormatIn {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    syntax: Option<String>,
    #[serde(default)]
    definition: Option<String>,
}

/// The request's tools in chat form, and their names.
#[derive(Default)]
pub struct Tools<'a> {
    pub chat: Vec<ChatTool<'a>>,
    pub names: ToolNames,
}

/// Reads `tools`.
pub fn translate(raw: Option<&RawValue>) -> Result<Tools<'_>, InvalidRequest> {
    let mut tools = Tools::default();
    let Some(raw) = raw else {
        return Ok(tools);
    };
    let items = bounded::items(raw).ok_or_else(|| {
        invalid(
            format!(
                "`tools` must be an array of at most {} tools",
                bounded::MAX_ITEMS
            ),
            "tools",
        )
    })?;
    for (i, item) in items.into_iter().enumerate() {
        add_tool(&mut tools, item, &format!("tools[{i}]"), None)?;
    }
    Ok(tools)
}

fn add_tool<'a>(
    tools: &mut Tools<'a>,
    raw: &'a RawValue,
    param: &str,
    namespace: Option<&str>,
) -> Result<(), InvalidRequest> {
    let tool: ToolIn<'a> = serde_json::from_str(raw.get())
        .map_err(|e| invalid(format!("`{param}` is not a valid tool: {e}"), param))?;
    let kind = tool.kind.as_deref().unwrap_or("");
    let named = |tool: &ToolIn<'_>| {
        tool.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
            invalid(
                format!("`{param}.name` is required"),
                &format!("{param}.name"),
            )
        })
    };
    match kind {
        "function" => {
            let name = named(&tool)?;
            let chat_name = tools.names.add(ToolName {
                custom: false,
                name,
                namespace: namespace.map(str::to_string),
            });
            tools.chat.push(ChatTool {
                kind: "function",
                function: ChatFunction {
                    name: chat_name,
                    description: tool.description,
                    parameters: tool
                        .parameters
                        .filter(|p| p.get() != "null")
                        .map(Parameters::Raw),
                    strict: tool.strict.filter(|s| *s),
                },
            });
        }
        "custom" => {
            let name = named(&tool)?;
            let chat_name = tools.names.add(ToolName {
                custom: true,
                name,
                namespace: namespace.map(str::to_string),
            });
            tools.chat.push(ChatTool {
                kind: "function",
                function: ChatFunction {
                    name: chat_name,
                    description: Some(custom_description(
                        tool.description.as_deref(),
                        tool.format.as_ref(),
                    )),
                    parameters: Some(Parameters::Built(json!({
                        "type": "object",
                        "properties": {"input": {
                            "type": "string",
                            "description": "The tool's whole input, as free text in the format described",
                        }},
                        "required": ["input"],
                        "additionalProperties": false,
                    }))),
                    strict: None,
                },
            });
        }
        "namespace" if namespace.is_none() => {
            let name = named(&tool)?;
            let inner = tool.tools.and_then(bounded::items).ok_or_else(|| {
                invalid(
                    format!("`{param}.tools` must be an array of tools"),
                    &format!("{param}.tools"),
                )
            })?;
            for (j, item) in inner.into_iter().enumerate() {
                add_tool(tools, item, &format!("{param}.tools[{j}]"), Some(&name))?;
            }
        }
        kind if DROPPED_TOOLS.contains(&kind) => {}
        "" => {
            return Err(invalid(
                format!("`{param}.type` is required"),
                &format!("{param}.type"),
            ));
        }
        other => {
            return Err(invalid(
                format!(
                    "`{param}.type` {other:?} is a tool the provider would run itself, which this gateway \
                     cannot do; it serves `function` and `custom` tools (and drops {})",
                    DROPPED_TOOLS.join(", ")
                ),
                &format!("{param}.type"),
            ));
        }
    }
    Ok(())
}

/// A custom tool's description, with the input format it asks for spelled out (no free route
/// enforces a grammar: the model is told, and the client checks the input as it always does).
fn custom_description(description: Option<&str>, format: Option<&FormatIn>) -> String {
    let mut text = description.unwrap_or_default().to_string();
    if let Some(format) = format
        && format.kind.as_deref() == Some("grammar")
        && let Some(definition) = &format.definition
    {
        let syntax = format.syntax.as_deref().unwrap_or("grammar");
        text.push_str(&format!(
            "\n\nPut the whole input in `input`; it must match this {syntax} grammar:\n{definition}"
        ));
    } else {
        text.push_str("\n\nPut the whole input, as free text, in `input`.");
    }
    text.trim_start().to_string()
}

#[derive(Deserialize)]
struct ChoiceIn<'a> {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, borrow)]
    tools: Option<&'a RawValue>,
}

/// Reads `tool_choice` against the translated tools; `allowed_tools` narrows `tools` itself.
pub fn choice(
    raw: Option<&RawValue>,
    tools: &mut Tools<'_>,
) -> Result<Option<Value>, InvalidRequest> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let refuse = |message: String| invalid(message, "tool_choice");
    if let Ok(mode) = serde_json::from_str::<String>(raw.get()) {
        return match mode.as_str() {
            "auto" | "none" | "required" => Ok(Some(Value::String(mode))),
            other => Err(refuse(format!(
                "`tool_choice` must be auto, none, required or an object; got {other:?}"
            ))),
        };
    }
    let choice: ChoiceIn<'_> = serde_json::from_str(raw.get())
        .map_err(|e| refuse(format!("`tool_choice` is not valid: {e}")))?;
    let declared = |names: &ToolNames, choice: &ChoiceIn<'_>| -> Result<String, InvalidRequest> {
        let name = choice
            .name
            .as_deref()
            .ok_or_else(|| refuse("`tool_choice.name` is required".into()))?;
        let chat = names.chat_name(name, None);
        if names.0.contains_key(&chat) {
            Ok(chat)
        } else {
            Err(refuse(format!(
                "`tool_choice` names {name:?}, which is not among the request's tools"
            )))
        }
    };
    match choice.kind.as_deref() {
        Some("function" | "custom") => {
            let chat = declared(&tools.names, &choice)?;
            Ok(Some(
                json!({"type": "function", "function": {"name": chat}}),
            ))
        }
        Some("allowed_tools") => {
            let listed = choice
                .tools
                .and_then(bounded::items)
                .ok_or_else(|| refuse("`tool_choice.tools` must be an array of tools".into()))?;
            let mut allowed = Vec::new();
            for tool in listed {
                let tool: ChoiceIn<'_> = serde_json::from_str(tool.get()).map_err(|e| {
                    refuse(format!("`tool_choice.tools` holds an invalid tool: {e}"))
                })?;
                allowed.push(declared(&tools.names, &tool)?);
            }
            tools.chat.retain(|t| allowed.contains(&t.function.name));
            match choice.mode.as_deref() {
                Some(mode @ ("auto" | "required")) => Ok(Some(Value::String(mode.into()))),
                _ => Err(refuse("`tool_choice.mode` must be auto or required".into())),
            }
        }
        Some(other) => Err(refuse(format!(
            "`tool_choice` forces the hosted tool {other:?}, which this gateway cannot run"
        ))),
        None => Err(refuse("`tool_choice.type` is required".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    fn chat(tools: &Tools<'_>) -> Value {
        serde_json::to_value(&tools.chat).unwrap()
    }

    #[test]
    fn function_and_custom_tools_become_chat_functions_and_hosted_ones_are_dropped() {
        let body = raw(
            r#"[{"type":"function","name":"shell","description":"run","strict":false,
                 "parameters":{"type":"object","properties":{"cmd":{"type":"string"}}}},
                {"type":"custom","name":"apply_patch","description":"Edit files",
                 "format":{"type":"grammar","syntax":"lark","definition":"start: \"*** Begin Patch\""}},
                {"type":"web_search","external_web_access":false},
                {"type":"namespace","name":"mcp","description":"d","tools":[
                    {"type":"function","name":"shell","parameters":null,"strict":true}]}]"#,
        );
        let tools = translate(Some(body)).unwrap();
        let sent = chat(&tools);
        assert_eq!(sent.as_array().unwrap().len(), 3);
        assert_eq!(sent[0]["function"]["name"], "shell");
        assert_eq!(
            sent[0]["function"]["parameters"]["properties"]["cmd"]["type"],
            "string"
        );
        assert!(
            sent[0]["function"].get("strict").is_none(),
            "false is left out"
        );
        assert_eq!(sent[1]["function"]["name"], "apply_patch");
        assert_eq!(sent[1]["function"]["parameters"]["required"][0], "input");
        let description = sent[1]["function"]["description"].as_str().unwrap();
        assert!(description.starts_with("Edit files") && description.contains("lark grammar"));
        assert_eq!(
            sent[2]["function"]["name"], "mcp__shell",
            "a clash is namespaced"
        );
        assert_eq!(sent[2]["function"]["strict"], true);
        assert!(tools.names.is_custom("apply_patch"));
        assert_eq!(
            tools.names.lookup("mcp__shell"),
            ToolName {
                custom: false,
                name: "shell".into(),
                namespace: Some("mcp".into())
            }
        );
        assert_eq!(tools.names.chat_name("shell", Some("mcp")), "mcp__shell");
        assert_eq!(tools.names.chat_name("shell", None), "shell");
    }

    #[test]
    fn tools_the_provider_would_run_are_refused_naming_the_tool() {
        for (body, param) in [
            (
                r#"[{"type":"file_search","vector_store_ids":["v"]}]"#,
                "tools[0].type",
            ),
            (
                r#"[{"type":"function","name":"f"},{"type":"local_shell"}]"#,
                "tools[1].type",
            ),
            (r#"[{"type":"mcp","server_label":"x"}]"#, "tools[0].type"),
            (r#"[{"type":"function"}]"#, "tools[0].name"),
            (r#"[{"name":"f"}]"#, "tools[0].type"),
            (r#"[7]"#, "tools[0]"),
            (r#"{"type":"function"}"#, "tools"),
        ] {
            let error = translate(Some(raw(body))).err().unwrap();
            assert_eq!(error.param.as_deref(), Some(param), "{body}");
        }
    }

    #[test]
    fn tool_choice_names_the_chat_function_and_allowed_tools_narrows_the_list() {
        let body = raw(
            r#"[{"type":"function","name":"a"},{"type":"function","name":"b"},
                {"type":"custom","name":"c"}]"#,
        );
        let mut tools = translate(Some(body)).unwrap();
        assert_eq!(
            choice(Some(raw(r#""required""#)), &mut tools).unwrap(),
            Some(json!("required"))
        );
        assert_eq!(
            choice(Some(raw(r#"{"type":"custom","name":"c"}"#)), &mut tools).unwrap(),
            Some(json!({"type":"function","function":{"name":"c"}}))
        );
        let allowed =
            r#"{"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"b"}]}"#;
        assert_eq!(
            choice(Some(raw(allowed)), &mut tools).unwrap(),
            Some(json!("auto"))
        );
        assert_eq!(chat(&tools).as_array().unwrap().len(), 1);
        for bad in [
            r#""sometimes""#,
            r#"{"type":"function","name":"zzz"}"#,
            r#"{"type":"web_search_preview"}"#,
            r#"{"name":"a"}"#,
        ] {
            let error = choice(Some(raw(bad)), &mut tools).unwrap_err();
            assert_eq!(error.param.as_deref(), Some("tool_choice"), "{bad}");
        }
    }
}
