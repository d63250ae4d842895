//! OpenRouter: asks callers to identify themselves (`HTTP-Referer`, `X-Title`); web search is its
//! `web` plugin.

use super::ProviderAdapter;
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

    fn request_web_search(&self, body: &mut Map<String, Value>) {
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
}
