//! Cohere's compatibility API (`/compatibility/v1`): refuses `parallel_tool_calls` on chat, and
//! `user` (and `dimensions`, which its embedding routes are not tagged for) on embeddings.

use super::ProviderAdapter;
use super::body::JsonObject;

pub struct Cohere;

impl ProviderAdapter for Cohere {
    fn name(&self) -> &'static str {
        "cohere"
    }

    fn prepare_body(&self, body: &mut JsonObject) {
        body.remove("parallel_tool_calls");
    }

    fn prepare_embeddings_body(&self, body: &mut JsonObject) {
        body.remove("user");
        body.remove("dimensions");
    }
}
