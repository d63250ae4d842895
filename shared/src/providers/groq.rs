//! Groq: OpenAI-compatible at `/openai/v1`; web search on compound models is asked for with
//! `compound_custom.tools.enabled_tools`, not with a tool object.

use super::{ProviderAdapter, body::JsonObject, web_search};
use serde_json::{Map, Value, json};

pub struct Groq;

impl ProviderAdapter for Groq {
    fn name(&self) -> &'static str {
        "groq"
    }

    fn extra_fields(&self) -> &'static [&'static str] {
        // Groq's reasoning controls, and Compound's tool selection.
        &[
            "reasoning_format",
            "include_reasoning",
            "compound_custom",
            "search_settings",
        ]
    }

    fn request_web_search(&self, body: &mut JsonObject) {
        body.edit(
            &["tools", "tool_choice", "compound_custom"],
            compound_web_search,
        );
    }
}

/// Groq Compound's form: `compound_custom.tools.enabled_tools` holds `web_search`, no tool object.
fn compound_web_search(body: &mut Map<String, Value>) {
    web_search::strip_openai_tool(body);
    let custom = body.entry("compound_custom").or_insert_with(|| json!({}));
    if !custom.is_object() {
        *custom = json!({});
    }
    let tools = &mut custom["tools"];
    if !tools.is_object() {
        *tools = json!({});
    }
    let enabled = &mut tools["enabled_tools"];
    if !enabled.is_array() {
        *enabled = json!([]);
    }
    if let Some(enabled) = enabled.as_array_mut()
        && !enabled.iter().any(|t| t == "web_search")
    {
        enabled.push(json!("web_search"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_search_becomes_compound_custom_without_a_preview_tool() {
        let body = json!({"tools": [{"type": "web_search_preview"}], "tool_choice": {"type": "web_search_preview"},
            "compound_custom": {"tools": {"enabled_tools": ["web_search", "code_interpreter"]}}});
        let mut body = JsonObject::from_value(&body);
        Groq.request_web_search(&mut body);
        let body = body.to_value();
        assert_eq!(
            body["compound_custom"]["tools"]["enabled_tools"],
            json!(["web_search", "code_interpreter"])
        );
        assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    }
}
