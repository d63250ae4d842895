//! Cohere's compatibility API (`/compatibility/v1`): refuses `parallel_tool_calls`.

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
}
