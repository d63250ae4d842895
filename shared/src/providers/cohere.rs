//! Cohere's compatibility API (`/compatibility/v1`): refuses `parallel_tool_calls`.

use super::ProviderAdapter;
use serde_json::{Map, Value};

pub struct Cohere;

impl ProviderAdapter for Cohere {
    fn name(&self) -> &'static str {
        "cohere"
    }

    fn prepare_body(&self, body: &mut Map<String, Value>) {
        body.remove("parallel_tool_calls");
    }
}
