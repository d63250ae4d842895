//! Google Gemini's OpenAI-compatible endpoint: `/models` lists ids as `models/gemini-…`, while chat
//! and embeddings requests name them without the prefix.

use super::ProviderAdapter;
use super::body::JsonObject;
use serde_json::Value;

pub struct Gemini;

const PREFIX: &str = "models/";

impl ProviderAdapter for Gemini {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn model_id_from_listing(&self, listed: &str) -> String {
        listed.strip_prefix(PREFIX).unwrap_or(listed).to_string()
    }

    fn prepare_body(&self, body: &mut JsonObject) {
        if let Some(Value::String(model)) = body.get_value("model")
            && let Some(bare) = model.strip_prefix(PREFIX)
        {
            body.set("model", &Value::String(bare.to_string()));
        }
    }

    fn prepare_embeddings_body(&self, body: &mut JsonObject) {
        self.prepare_body(body);
    }
}
