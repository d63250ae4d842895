//! OpenRouter: asks callers to identify themselves (`HTTP-Referer`, `X-Title`); web search is its
//! `web` plugin. Its free models share one allowance per account: a 429
//! `free-models-per-day` rests the key on every route until `X-RateLimit-Reset` (epoch
//! milliseconds), which is also copied into `error.metadata.headers`, beside
//! `metadata.retry_after_seconds`, for when the headers do not arrive.

use super::body::JsonObject;
use super::{
    FailureKind, ProviderAdapter, RateLimitInfo, Spent, SpentWindow, UpstreamFailure,
    UpstreamRequest,
};
use crate::catalog::ApiKey;
use crate::time::EpochMs;
use ::http::header::HeaderName;
use serde_json::{Map, Value, json};

/// OpenRouter's headers naming the calling app: its site (`HTTP-Referer`, so spelled) and title.
const REFERER: HeaderName = HeaderName::from_static("http-referer");
const TITLE: HeaderName = HeaderName::from_static("x-title");

pub struct OpenRouter;

impl ProviderAdapter for OpenRouter {
    fn name(&self) -> &'static str {
        "openrouter"
    }

    fn headers(&self, request: UpstreamRequest, key: Option<&ApiKey>) -> UpstreamRequest {
        let request = request
            .header(REFERER, "https://github.com/freerouter/freerouter")
            .header(TITLE, "FreeRouter");
        match key {
            Some(key) => request.bearer_auth(key.secret.expose()),
            None => request,
        }
    }

    fn extra_fields(&self) -> &'static [&'static str] {
        // Sampling and reasoning controls; never `models`, `route`, `provider`, `plugins` or
        // `transforms`, which pick paid endpoints or bill (a `:free` request whose `models`
        // fallback fires is billed at the paid model's price).
        &[
            "reasoning",
            "include_reasoning",
            "top_k",
            "min_p",
            "top_a",
            "repetition_penalty",
        ]
    }

    fn request_web_search(&self, body: &mut JsonObject) {
        body.edit(&["tools", "tool_choice", "plugins"], web_plugin);
    }

    fn rate_headers_cover_the_key(&self) -> bool {
        true
    }

    fn refine_failure(&self, mut failure: UpstreamFailure, now: EpochMs) -> UpstreamFailure {
        if failure.kind != FailureKind::RateLimited {
            return failure;
        }
        let body = failure.body_json().unwrap_or_default();
        let metadata = body.pointer("/error/metadata");
        if failure.rate.windows.is_empty()
            && let Some(Value::Object(copied)) = metadata.and_then(|m| m.get("headers"))
        {
            let pairs: Vec<(String, String)> = copied
                .iter()
                .filter_map(|(name, value)| {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    Some((name.clone(), value))
                })
                .collect();
            let retry_after = failure.rate.retry_after_ms;
            failure.rate =
                RateLimitInfo::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())), now);
            failure.rate.retry_after_ms = failure.rate.retry_after_ms.or(retry_after);
            failure.rate.whole_key = true;
        }
        if failure.rate.retry_after_ms.is_none()
            && let Some(seconds) = metadata
                .and_then(|m| m.get("retry_after_seconds"))
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
        {
            failure.rate.retry_after_ms =
                Some(((seconds * 1000.0) as u64).min(super::ratelimit::MAX_RESET_MS));
        }
        // One allowance for all `:free` models of the account: the key rests on every route.
        let message = failure.message.to_ascii_lowercase();
        if message.contains("free-models-per-day") {
            failure.spent = Some(Spent::key(SpentWindow::Day));
        } else if message.contains("free-models-per-min") {
            failure.spent = Some(Spent::key(SpentWindow::Minute));
        }
        failure
    }
}

/// OpenRouter's form of a web search: its `web` plugin.
fn web_plugin(body: &mut Map<String, Value>) {
    super::web_search::strip_openai_tool(body);
    let plugins = body.entry("plugins").or_insert_with(|| json!([]));
    if !plugins.is_array() {
        *plugins = json!([]);
    }
    if let Some(plugins) = plugins.as_array_mut()
        && !plugins
            .iter()
            .any(|p| p.get("id").and_then(Value::as_str) == Some("web"))
    {
        plugins.push(json!({"id": "web"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::classify_error_response;

    const NOW: EpochMs = 1_800_000_000_000;

    fn free_per_day(metadata: &str) -> String {
        format!(
            r#"{{"error":{{"message":"Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day","code":429,"metadata":{metadata}}}}}"#
        )
    }

    #[test]
    fn free_models_per_day_rests_the_whole_key_until_the_reset_in_the_headers() {
        let reset = (NOW + 3 * 3_600_000).to_string();
        let headers = ::http::HeaderMap::from_iter([
            ("x-ratelimit-limit".parse().unwrap(), "50".parse().unwrap()),
            (
                "x-ratelimit-remaining".parse().unwrap(),
                "0".parse().unwrap(),
            ),
            ("x-ratelimit-reset".parse().unwrap(), reset.parse().unwrap()),
        ]);
        let rate = RateLimitInfo::from_headers(&headers, NOW);
        let failure = classify_error_response(429, free_per_day("{}").into(), rate);
        let f = OpenRouter.refine_failure(failure, NOW);
        assert_eq!(f.spent, Some(Spent::key(SpentWindow::Day)));
        assert_eq!(f.rate.wait_hint_ms(true), Some(3 * 3_600_000));
    }

    #[test]
    fn without_headers_the_copies_in_the_metadata_are_read() {
        let reset = NOW + 2 * 3_600_000;
        let body = free_per_day(&format!(
            r#"{{"headers":{{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"{reset}"}},"provider_name":null}}"#
        ));
        let failure = classify_error_response(429, body.into(), RateLimitInfo::default());
        let f = OpenRouter.refine_failure(failure, NOW);
        assert_eq!(f.rate.wait_hint_ms(true), Some(2 * 3_600_000));
        let body = free_per_day(r#"{"retry_after_seconds":42}"#);
        let failure = classify_error_response(429, body.into(), RateLimitInfo::default());
        let f = OpenRouter.refine_failure(failure, NOW);
        assert_eq!(f.rate.wait_hint_ms(true), Some(42_000));
        assert_eq!(f.spent, Some(Spent::key(SpentWindow::Day)));
    }
}
