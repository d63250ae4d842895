//! Cohere's compatibility API (`/compatibility/v1`): refuses `parallel_tool_calls` on chat, and
//! `user` (and `dimensions`, which its embedding routes are not tagged for) on embeddings. A trial
//! key's 1,000 calls a month, once spent, are a 429 saying so in words.

use super::body::JsonObject;
use super::{FailureKind, ProviderAdapter, Spent, SpentWindow, UpstreamFailure};
use crate::time::EpochMs;

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

    fn refine_failure(&self, mut failure: UpstreamFailure, _now: EpochMs) -> UpstreamFailure {
        // "You are using a Trial key, which is limited to 1000 API calls / month. …"
        let lower = failure.message.to_ascii_lowercase();
        if failure.kind == FailureKind::RateLimited
            && lower.contains("trial key")
            && (lower.contains("/ month") || lower.contains("per month"))
        {
            failure.spent = Some(Spent::key(SpentWindow::Month));
        }
        failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{RateLimitInfo, classify_error_response};

    #[test]
    fn a_spent_trial_month_rests_the_whole_key_for_the_month() {
        let body = r#"{"id":"1","message":"You are using a Trial key, which is limited to 1000 API calls / month. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'."}"#;
        let failure = classify_error_response(429, body.into(), RateLimitInfo::default());
        let f = Cohere.refine_failure(failure, 0);
        assert_eq!(f.spent, Some(Spent::key(SpentWindow::Month)));
        let minute = r#"{"message":"You are using a Trial key, which is limited to 20 API calls / minute."}"#;
        let failure = classify_error_response(429, minute.into(), RateLimitInfo::default());
        assert_eq!(Cohere.refine_failure(failure, 0).spent, None);
    }
}
