//! Mistral: an assistant prefill is continued only when marked `prefix: true`; its embeddings
//! API names `dimensions` `output_dimension` and has no `user` (dropped, as its API is strict about
//! fields it does not list).

use super::ProviderAdapter;
use super::body::JsonObject;
use serde_json::{Value, json};

pub struct Mistral;

impl ProviderAdapter for Mistral {
    fn name(&self) -> &'static str {
        "mistral"
    }

    fn prefill_message(&self, partial: &str) -> Value {
        json!({"role": "assistant", "content": partial, "prefix": true})
    }

    fn prepare_embeddings_body(&self, body: &mut JsonObject) {
        body.remove("user");
        if let Some(dimensions) = body.remove("dimensions") {
            body.set_raw("output_dimension", dimensions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_go_as_output_dimension_and_user_is_dropped() {
        let mut body = JsonObject::from_value(
            &json!({"model": "codestral-embed", "input": ["x"], "dimensions": 256, "user": "u"}),
        );
        Mistral.prepare_embeddings_body(&mut body);
        assert_eq!(
            body.to_value(),
            json!({"model": "codestral-embed", "input": ["x"], "output_dimension": 256})
        );
    }
}
