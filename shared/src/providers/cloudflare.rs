//! Cloudflare Workers AI: the account id is part of the path (chat, embeddings, models), and an
//! assistant message with `content: null` is refused (it must be a string). The account's daily
//! neurons, once spent, are error 4006 ("you have used up your daily free allocation of 10,000
//! neurons"), under a 429 or a 400; they come back at 00:00 UTC.

use super::body::JsonObject;
use super::{FailureKind, ProviderAdapter, Spent, SpentWindow, UpstreamFailure};
use crate::catalog::Provider;
use crate::time::EpochMs;
use serde_json::Value;

pub struct Cloudflare;

fn with_account(provider: &Provider, url: String) -> String {
    match provider.params.get("account_id") {
        Some(account) => url.replace("{account_id}", account),
        None => url,
    }
}

impl ProviderAdapter for Cloudflare {
    fn name(&self) -> &'static str {
        "cloudflare"
    }

    fn chat_url(&self, provider: &Provider) -> String {
        with_account(provider, format!("{}/chat/completions", provider.base_url))
    }

    fn models_url(&self, provider: &Provider) -> String {
        with_account(provider, format!("{}/models", provider.base_url))
    }

    fn embeddings_url(&self, provider: &Provider) -> String {
        with_account(provider, format!("{}/embeddings", provider.base_url))
    }

    fn refine_failure(&self, mut failure: UpstreamFailure, _now: EpochMs) -> UpstreamFailure {
        let says_4006 = failure.body_json().is_some_and(|body| {
            body.pointer("/errors/0/code").and_then(Value::as_u64) == Some(4006)
        }) || failure.message.trim_start().starts_with("4006:");
        if says_4006 && matches!(failure.status, Some(400 | 429)) {
            failure.kind = FailureKind::RateLimited;
            failure.spent = Some(Spent::key(SpentWindow::Day));
        }
        failure
    }

    fn prepare_body(&self, body: &mut JsonObject) {
        // Most bodies have no `null` at all: only those are parsed and rewritten.
        if !body
            .get("messages")
            .is_some_and(|m| m.get().contains("null"))
        {
            return;
        }
        body.edit(&["messages"], |body| {
            if let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) {
                for message in messages {
                    if message.get("content").is_some_and(Value::is_null) {
                        message["content"] = Value::String(String::new());
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod quota_tests {
    use super::*;
    use crate::providers::{RateLimitInfo, classify_error_response};

    #[test]
    fn error_4006_is_the_account_s_spent_day_under_a_429_or_a_400() {
        let body = r#"{"result":null,"success":false,"errors":[{"code":4006,"message":"4006: you have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage."}],"messages":[]}"#;
        for status in [429, 400] {
            let failure = classify_error_response(status, body.into(), RateLimitInfo::default());
            let f = Cloudflare.refine_failure(failure, 0);
            assert_eq!(f.kind, FailureKind::RateLimited, "{status}");
            assert_eq!(f.spent, Some(Spent::key(SpentWindow::Day)), "{status}");
        }
        let other = r#"{"success":false,"errors":[{"code":5007,"message":"No such model"}]}"#;
        let failure = classify_error_response(400, other.into(), RateLimitInfo::default());
        assert_eq!(Cloudflare.refine_failure(failure, 0).spent, None);
    }
}
