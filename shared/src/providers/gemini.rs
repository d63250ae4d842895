//! Google Gemini's OpenAI-compatible endpoint: `/models` lists ids as `models/gemini-…`, while chat
//! and embeddings requests name them without the prefix. A spent quota is a 429
//! `RESOURCE_EXHAUSTED` (its body a JSON array) whose details say which window (`QuotaFailure`'s
//! `quotaId`: `…PerMinute…`, `…PerDay…`), how long to wait (`RetryInfo.retryDelay`), and, with a
//! `quotaValue` of 0, that the model is not in this key's tier at all. No rate-limit headers.

use super::body::JsonObject;
use super::ratelimit::parse_reset;
use super::{FailureKind, ProviderAdapter, Spent, SpentWindow, UpstreamFailure};
use crate::time::EpochMs;
use serde_json::Value;

pub struct Gemini;

const PREFIX: &str = "models/";

impl ProviderAdapter for Gemini {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn model_id_from_listing(&self, listed: &str) -> String {
        listed.strip_prefix(PREFIX).unwrap_or(listed).to_string()
    }

    fn prepare_body(&self, body: &mut JsonObject) {
        if let Some(Value::String(model)) = body.get_value("model")
            && let Some(bare) = model.strip_prefix(PREFIX)
        {
            body.set("model", &Value::String(bare.to_string()));
        }
    }

    fn prepare_embeddings_body(&self, body: &mut JsonObject) {
        self.prepare_body(body);
    }

    fn refine_failure(&self, mut failure: UpstreamFailure, now: EpochMs) -> UpstreamFailure {
        if failure.kind != FailureKind::RateLimited {
            return failure;
        }
        let Some(body) = failure.body_json() else {
            return failure;
        };
        let details = body
            .pointer("/error/details")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let of_type = |suffix: &'static str| {
            details.iter().filter(move |d| {
                d.get("@type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with(suffix))
            })
        };
        let delay_ms = of_type("google.rpc.RetryInfo")
            .filter_map(|d| d.get("retryDelay")?.as_str())
            .find_map(|delay| parse_reset(delay, now));
        let violations: Vec<&Value> = of_type("google.rpc.QuotaFailure")
            .filter_map(|d| d.get("violations")?.as_array())
            .flatten()
            .collect();
        let window = violations
            .iter()
            .map(|v| violation_window(v))
            .max_by_key(|w| match w {
                Some(SpentWindow::Minute) => 1,
                Some(SpentWindow::Day) => 2,
                Some(SpentWindow::Month) => 3,
                Some(SpentWindow::NotInTier) => 4,
                None => 0,
            })
            .flatten();
        // The delay is the wait for a minute's refusal (or one that names no window); a spent
        // day rests until the provider's day turns, whatever short delay rides along.
        if matches!(window, None | Some(SpentWindow::Minute))
            && failure.rate.retry_after_ms.is_none()
        {
            failure.rate.retry_after_ms = delay_ms;
        }
        if let Some(window) = window {
            // Quotas are per project and model: the key rests on this route only.
            failure.spent = Some(Spent::route(window));
        }
        failure
    }
}

/// What one `QuotaFailure` violation says: a `quotaValue` of 0 is a model outside the key's tier;
/// else the window its `quotaId` (or `quotaMetric`) names.
fn violation_window(violation: &Value) -> Option<SpentWindow> {
    let value = violation.get("quotaValue");
    let zero = match value {
        Some(Value::String(v)) => v.trim() == "0",
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if zero {
        return Some(SpentWindow::NotInTier);
    }
    let id = ["quotaId", "quotaMetric"]
        .iter()
        .filter_map(|field| violation.get(*field)?.as_str())
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    if id.contains("perday") || id.contains("per_day") {
        Some(SpentWindow::Day)
    } else if id.contains("permonth") {
        Some(SpentWindow::Month)
    } else if id.contains("perminute") || id.contains("per_minute") {
        Some(SpentWindow::Minute)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{RateLimitInfo, classify_error_response};

    const NOW: EpochMs = 1_800_000_000_000;

    fn refused(body: &str) -> UpstreamFailure {
        let failure =
            classify_error_response(429, body.to_string().into(), RateLimitInfo::default());
        Gemini.refine_failure(failure, NOW)
    }

    fn exhausted(quota_id: &str, quota_value: &str, delay: &str) -> String {
        format!(
            r#"[{{"error":{{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"{quota_id}","quotaDimensions":{{"location":"global","model":"gemini-2.5-flash"}},"quotaValue":"{quota_value}"}}]}},{{"@type":"type.googleapis.com/google.rpc.Help","links":[{{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}}]}},{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{delay}"}}]}}}}]"#
        )
    }

    #[test]
    fn a_per_minute_quota_waits_for_the_retry_delay() {
        let f = refused(&exhausted(
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "5",
            "37s",
        ));
        assert_eq!(f.spent, Some(Spent::route(SpentWindow::Minute)));
        assert_eq!(f.rate.wait_hint_ms(true), Some(37_000));
    }

    #[test]
    fn a_per_day_quota_rests_until_the_day_turns_not_for_the_short_delay() {
        let f = refused(&exhausted(
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            "20",
            "12.5s",
        ));
        assert_eq!(f.spent, Some(Spent::route(SpentWindow::Day)));
        assert_eq!(f.rate.wait_hint_ms(true), None, "the day's reset decides");
    }

    #[test]
    fn a_quota_value_of_zero_means_the_model_is_not_in_this_key_s_tier() {
        let f = refused(&exhausted(
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            "0",
            "30s",
        ));
        assert_eq!(f.spent, Some(Spent::route(SpentWindow::NotInTier)));
    }

    #[test]
    fn the_bare_resource_exhausted_form_names_no_window() {
        let f = refused(
            r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(f.kind, FailureKind::RateLimited);
        assert_eq!(f.spent, None);
        assert_eq!(f.rate.wait_hint_ms(true), None);
    }
}
