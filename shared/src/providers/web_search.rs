//! Web-search request forms: OpenAI's tool (the default) and helpers the provider adapters share.

use serde_json::{Map, Value, json};

const OPENAI_TOOL: &str = "web_search_preview";

fn is_web_search_tool(tool: &Value) -> bool {
    matches!(
        tool.get("type").and_then(Value::as_str),
        Some("web_search_preview" | "web_search")
    )
}

/// Adds `{"type":"web_search_preview"}` unless the caller already has a web-search tool, and forces it.
pub fn openai_tool(body: &mut Map<String, Value>) {
    let tools = body.entry("tools").or_insert_with(|| json!([]));
    if !tools.is_array() {
        *tools = json!([]);
    }
    if let Some(tools) = tools.as_array_mut()
        && !tools.iter().any(is_web_search_tool)
    {
        tools.push(json!({"type": OPENAI_TOOL}));
    }
    let chosen = body
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|tools| tools.iter().find(|t| is_web_search_tool(t)))
        .and_then(|t| t.get("type").cloned())
        .unwrap_or_else(|| json!(OPENAI_TOOL));
    body.insert("tool_choice".into(), json!({"type": chosen}));
}

/// Removes OpenAI-style web-search tools (and a `tool_choice` naming one), for providers with their own form.
pub fn strip_openai_tool(body: &mut Map<String, Value>) {
    if let Some(tools) = body.get_mut("tools").and_then(Value::as_array_mut) {
        tools.retain(|t| !is_web_search_tool(t));
        if tools.is_empty() {
            body.remove("tools");
        }
    }
    let forced_search = body.get("tool_choice").is_some_and(is_web_search_tool);
    if forced_search {
        body.remove("tool_choice");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn the_openai_form_adds_and_forces_the_tool_once() {
        let mut b = body(
            json!({"messages": [], "tools": [{"type": "function", "function": {"name": "f"}}]}),
        );
        openai_tool(&mut b);
        openai_tool(&mut b);
        assert_eq!(b["tools"].as_array().unwrap().len(), 2);
        assert_eq!(b["tool_choice"], json!({"type": "web_search_preview"}));
    }

    #[test]
    fn a_caller_supplied_web_search_tool_is_not_duplicated() {
        let mut b =
            body(json!({"tools": [{"type": "web_search_preview", "search_context_size": "low"}]}));
        openai_tool(&mut b);
        assert_eq!(b["tools"].as_array().unwrap().len(), 1);
        assert_eq!(b["tools"][0]["search_context_size"], "low");
    }

    #[test]
    fn stripping_removes_the_tool_and_its_forced_choice() {
        let mut b = body(
            json!({"tools": [{"type": "web_search_preview"}], "tool_choice": {"type": "web_search_preview"}}),
        );
        strip_openai_tool(&mut b);
        assert!(b.get("tools").is_none() && b.get("tool_choice").is_none());
    }
}
