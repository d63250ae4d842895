//! Groq: OpenAI-compatible at `/openai/v1`; web search on compound models is asked for with
//! `compound_custom.tools.enabled_tools`, not with a tool object.

use super::{ProviderAdapter, web_search};
use serde_json::{Map, Value, json};

pub struct Groq;

impl ProviderAdapter for Groq {
    fn name(&self) -> &'static str {
        "groq"
    }

    fn request_web_search(&self, body: &mut Map<String, Value>) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_search_becomes_compound_custom_without_a_preview_tool() {
        let mut body = json!({"tools": [{"type": "web_search_preview"}], "tool_choice": {"type": "web_search_preview"},
            "compound_custom": {"tools": {"enabled_tools": ["web_search", "code_interpreter"]}}})
        .as_object()
        .cloned()
        .unwrap();
        Groq.request_web_search(&mut body);
        assert_eq!(
            body["compound_custom"]["tools"]["enabled_tools"],
            json!(["web_search", "code_interpreter"])
        );
        assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    }
}
