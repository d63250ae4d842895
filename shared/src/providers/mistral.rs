//! Mistral: an assistant prefill is continued only when marked `prefix: true`.

use super::ProviderAdapter;
use serde_json::{Value, json};

pub struct Mistral;

impl ProviderAdapter for Mistral {
    fn name(&self) -> &'static str {
        "mistral"
    }

    fn prefill_message(&self, partial: &str) -> Value {
        json!({"role": "assistant", "content": partial, "prefix": true})
    }
}
