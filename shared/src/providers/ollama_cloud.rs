//! Ollama Cloud: 403 means the model needs a subscription (not that the key is bad), so it is a
//! model this key cannot use, like a missing one.

use super::{FailureKind, ProviderAdapter, UpstreamFailure};

pub struct OllamaCloud;

impl ProviderAdapter for OllamaCloud {
    fn name(&self) -> &'static str {
        "ollama-cloud"
    }

    fn refine_failure(
        &self,
        mut failure: UpstreamFailure,
        _now: crate::time::EpochMs,
    ) -> UpstreamFailure {
        if failure.status == Some(403) {
            failure.kind = FailureKind::NotFound;
        }
        failure
    }
}
