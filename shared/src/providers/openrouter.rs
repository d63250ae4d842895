//! OpenRouter: asks callers to identify themselves (`HTTP-Referer`, `X-Title`); web search is its
//! `web` plugin.

use super::ProviderAdapter;
use super::body::JsonObject;
use crate::catalog::ApiKey;
use serde_json::{Map, Value, json};

pub struct OpenRouter;

impl ProviderAdapter for OpenRouter {
    fn name(&self) -> &'static str {
        "openrouter"
    }

    fn headers(
        &self,
        request: reqwest::RequestBuilder,
        key: Option<&ApiKey>,
    ) -> reqwest::RequestBuilder {
        let request = request
            .header("HTTP-Referer", "https://github.com/freerouter/freerouter")
            .header("X-Title", "FreeRouter");
        match key {
            Some(key) => request.bearer_auth(key.secret.expose()),
            None => request,
        }
    }

    fn extra_fields(&self) -> &'static [&'static str] {
        // Sampling and reasoning controls; never `models`, `route`, `provider`, `plugins` or
        // `transforms`, which pick paid endpoints or bill (a `:free` request whose `models`
        // fallback fires is billed at the paid model's price).
        &[
            "reasoning",
            "include_reasoning",
            "top_k",
            "min_p",
            "top_a",
            "repetition_penalty",
        ]
    }

    fn request_web_search(&self, body: &mut JsonObject) {
        body.edit(&["tools", "tool_choice", "plugins"], web_plugin);
    }
}

/// OpenRouter's form of a web search: its `web` plugin.
fn web_plugin(body: &mut Map<String, Value>) {
    super::web_search::strip_openai_tool(body);
    let plugins = body.entry("plugins").or_insert_with(|| json!([]));
    if !plugins.is_array() {
        *plugins = json!([]);
    }
    if let Some(plugins) = plugins.as_array_mut()
        && !plugins
            .iter()
            .any(|p| p.get("id").and_then(Value::as_str) == Some("web"))
    {
        plugins.push(json!({"id": "web"}));
    }
}
