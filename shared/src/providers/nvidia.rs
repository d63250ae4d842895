//! NVIDIA NIM (build.nvidia.com): chat is plain OpenAI. NVIDIA's own retrieval embedding models
//! (`nvidia/…`: `llama-nemotron-embed-*`, `nv-embedqa-*`) are asymmetric and refuse a request
//! without `input_type` (`query` or `passage`), so one without is sent as a `query` — the same type
//! for every request, so a client that does not tell documents from queries still gets vectors
//! that compare. `input_type` and `truncate` pass through from the client; models of other
//! publishers (`baai/bge-m3`) get nothing added.

use super::ProviderAdapter;
use super::body::JsonObject;
use serde_json::{Value, json};

pub struct Nvidia;

impl ProviderAdapter for Nvidia {
    fn name(&self) -> &'static str {
        "nvidia"
    }

    fn embedding_fields(&self) -> &'static [&'static str] {
        &["input_type", "truncate"]
    }

    fn prepare_embeddings_body(&self, body: &mut JsonObject) {
        let own_model =
            matches!(body.get_value("model"), Some(Value::String(m)) if m.starts_with("nvidia/"));
        if own_model && !body.contains("input_type") {
            body.set("input_type", &json!("query"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidias_own_models_get_an_input_type_unless_the_client_gave_one() {
        let mut own = JsonObject::from_value(
            &json!({"model": "nvidia/llama-nemotron-embed-1b-v2", "input": "x"}),
        );
        Nvidia.prepare_embeddings_body(&mut own);
        assert_eq!(own.to_value()["input_type"], "query");
        let mut given = JsonObject::from_value(
            &json!({"model": "nvidia/llama-nemotron-embed-1b-v2", "input": "x", "input_type": "passage"}),
        );
        Nvidia.prepare_embeddings_body(&mut given);
        assert_eq!(given.to_value()["input_type"], "passage");
        let mut other = JsonObject::from_value(&json!({"model": "baai/bge-m3", "input": "x"}));
        Nvidia.prepare_embeddings_body(&mut other);
        assert!(other.get("input_type").is_none());
    }
}
