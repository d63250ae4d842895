//! How a simulated provider says what is left and that a quota is spent, in each real provider's
//! own form (`/work/shared/PROVIDERS.md`, 2026): the rate-limit headers of its answers and the
//! body and headers of its 429s.
//!
//! - [`Dialect::OpenAi`]: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the
//!   tightest limit of each kind, `retry-after` on a 429 (the default).
//! - [`Dialect::Groq`]: the same names, but `-requests` always describe the **day** (RPD) and
//!   `-tokens` the **minute** (TPM): two windows in one header set.
//! - [`Dialect::Cerebras`]: every window named (`x-ratelimit-remaining-requests-day`,
//!   `…-tokens-minute`, resets in seconds); a 429 says "Tokens per minute limit exceeded - too many
//!   tokens processed." with no `retry-after`; a request's `max_tokens` counts against the token
//!   windows when it arrives.
//! - [`Dialect::Gemini`]: no headers at all; a 429 is a JSON **array** holding
//!   `RESOURCE_EXHAUSTED` with a `QuotaFailure` (`quotaId` naming the window, `quotaValue` the
//!   limit) and a `RetryInfo` whose `retryDelay` is the wait for the current minute.
//! - [`Dialect::OpenRouter`]: bare `X-RateLimit-{Limit,Remaining,Reset}` for the request limit,
//!   reset in epoch milliseconds; a 429 "Rate limit exceeded: free-models-per-day" (or `-per-min`)
//!   carries them and copies them into `error.metadata.headers`.

use serde_json::{Value, json};

use super::limits::{Check, Kind, MINUTE_MS, Span, go_duration, minute_window_start};

/// A provider's way of speaking about its limits. See the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    OpenAi,
    Groq,
    Cerebras,
    Gemini,
    OpenRouter,
}

/// A 429 as the dialect sends it.
pub(crate) struct RefusalForm {
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Dialect {
    /// Whether a request's `max_tokens` is counted against the token windows on arrival, before
    /// any answer (Cerebras; the answer's own tokens count only beyond it).
    pub(crate) fn counts_max_tokens(self) -> bool {
        self == Dialect::Cerebras
    }

    /// The rate-limit headers of an answer (or a refusal) given the limits' current counts.
    pub(crate) fn headers(self, checks: &[Check], now_ms: u64) -> Vec<(String, String)> {
        match self {
            Dialect::OpenAi => {
                let mut out = Vec::new();
                for kind in [Kind::Requests, Kind::Tokens] {
                    if let Some(check) = tightest(checks.iter().filter(|c| c.kind == kind)) {
                        push_triplet(&mut out, kind.suffix(), check, now_ms);
                    }
                }
                out
            }
            Dialect::Groq => {
                let mut out = Vec::new();
                let pick = |kind: Kind, span: Span| {
                    tightest(
                        checks
                            .iter()
                            .filter(move |c| c.kind == kind && c.span == span),
                    )
                };
                if let Some(day) = pick(Kind::Requests, Span::Day) {
                    push_triplet(&mut out, "requests", day, now_ms);
                }
                if let Some(minute) = pick(Kind::Tokens, Span::Minute) {
                    push_triplet(&mut out, "tokens", minute, now_ms);
                }
                out
            }
            Dialect::Cerebras => {
                let mut out = Vec::new();
                for kind in [Kind::Requests, Kind::Tokens] {
                    for span in [Span::Minute, Span::Day] {
                        let filtered = checks.iter().filter(|c| c.kind == kind && c.span == span);
                        if let Some(check) = tightest(filtered) {
                            let name = format!("{}-{}", kind.suffix(), span.word());
                            let reset_s = check.end_ms.saturating_sub(now_ms) as f64 / 1000.0;
                            out.push((
                                format!("x-ratelimit-limit-{name}"),
                                check.limit.to_string(),
                            ));
                            out.push((
                                format!("x-ratelimit-remaining-{name}"),
                                check.remaining().to_string(),
                            ));
                            out.push((
                                format!("x-ratelimit-reset-{name}"),
                                format!("{reset_s:.3}"),
                            ));
                        }
                    }
                }
                out
            }
            Dialect::Gemini => Vec::new(),
            Dialect::OpenRouter => {
                match tightest(checks.iter().filter(|c| c.kind == Kind::Requests)) {
                    Some(check) => vec![
                        ("X-RateLimit-Limit".into(), check.limit.to_string()),
                        (
                            "X-RateLimit-Remaining".into(),
                            check.remaining().to_string(),
                        ),
                        ("X-RateLimit-Reset".into(), check.end_ms.to_string()),
                    ],
                    None => Vec::new(),
                }
            }
        }
    }

    /// The 429 for a request `block` refused (`message` is OpenAI's wording of it).
    pub(crate) fn refusal(
        self,
        block: &Check,
        checks: &[Check],
        message: &str,
        now_ms: u64,
    ) -> RefusalForm {
        let mut headers = self.headers(checks, now_ms);
        let wait_ms = block.end_ms - now_ms;
        let retry_after = || {
            (
                "retry-after".to_string(),
                wait_ms.div_ceil(1_000).max(1).to_string(),
            )
        };
        let body = match self {
            Dialect::OpenAi | Dialect::Groq => {
                headers.insert(0, retry_after());
                json!({"error": {"message": message, "type": block.kind.suffix(),
                    "code": "rate_limit_exceeded", "param": null}})
            }
            Dialect::Cerebras => {
                let (what, did, code) = match block.kind {
                    Kind::Requests => (
                        "Requests",
                        "too many requests sent",
                        "request_quota_exceeded",
                    ),
                    Kind::Tokens => (
                        "Tokens",
                        "too many tokens processed",
                        "token_quota_exceeded",
                    ),
                };
                json!({"message": format!("{what} per {} limit exceeded - {did}.", block.span.word()),
                    "type": "too_many_requests_error", "param": "quota", "code": code})
            }
            Dialect::Gemini => gemini_exhausted(
                &gemini_quota_id(block),
                block.limit,
                // Gemini's delay is the current minute's, whichever window refused.
                &format!(
                    "{}s",
                    (minute_window_start(now_ms) + MINUTE_MS - now_ms).div_ceil(1_000)
                ),
            ),
            Dialect::OpenRouter => {
                let per = match block.span {
                    Span::Minute => "free-models-per-min",
                    Span::Day => "free-models-per-day",
                };
                let copied: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                    .collect();
                json!({"error": {"message": format!("Rate limit exceeded: {per}. Add 10 credits to unlock 1000 free model requests per day"),
                    "code": 429, "metadata": {"headers": copied, "provider_name": null}},
                    "user_id": "user_sim"})
            }
        };
        RefusalForm { body, headers }
    }
}

/// Gemini's `RESOURCE_EXHAUSTED` as its OpenAI-compatible endpoint sends it: a JSON array.
pub(crate) fn gemini_exhausted(quota_id: &str, quota_value: u64, retry_delay: &str) -> Value {
    json!([{"error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "sim"},
                "quotaValue": quota_value.to_string(),
            }]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
    }}])
}

fn gemini_quota_id(check: &Check) -> String {
    let what = match check.kind {
        Kind::Requests => "GenerateRequests",
        Kind::Tokens => "GenerateContentInputTokens",
    };
    let span = match check.span {
        Span::Minute => "PerMinute",
        Span::Day => "PerDay",
    };
    format!("{what}{span}PerProjectPerModel-FreeTier")
}

/// The fewest remaining; on a tie the window that ends last.
fn tightest<'a>(checks: impl Iterator<Item = &'a Check>) -> Option<&'a Check> {
    checks.min_by(|a, b| {
        a.remaining()
            .cmp(&b.remaining())
            .then(b.end_ms.cmp(&a.end_ms))
    })
}

fn push_triplet(out: &mut Vec<(String, String)>, suffix: &str, check: &Check, now_ms: u64) {
    out.push((
        format!("x-ratelimit-limit-{suffix}"),
        check.limit.to_string(),
    ));
    out.push((
        format!("x-ratelimit-remaining-{suffix}"),
        check.remaining().to_string(),
    ));
    out.push((
        format!("x-ratelimit-reset-{suffix}"),
        go_duration(check.end_ms.saturating_sub(now_ms)),
    ));
}

#[cfg(test)]
mod tests {
    use super::super::limits::{KeyLimits, Limiter};
    use super::*;

    /// 2025-06-01T12:00:00Z, a minute boundary.
    const NOON: u64 = 1_748_779_200_000;

    fn limiter(dialect: Dialect, limits: KeyLimits) -> Limiter {
        let mut limiter = Limiter::default();
        limiter.set_dialect(dialect);
        limiter.limit_key("k", limits);
        limiter
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    const GROQ_70B: KeyLimits = KeyLimits {
        rpm: Some(30),
        rpd: Some(1_000),
        tpm: Some(100),
        tpd: Some(100_000),
    };

    #[test]
    fn groq_s_requests_headers_describe_the_day_and_its_tokens_headers_the_minute() {
        let mut limiter = limiter(Dialect::Groq, GROQ_70B);
        let grant = limiter
            .admit("k", "m", KeyLimits::default(), 100, NOON + 30_000)
            .expect("admitted");
        assert_eq!(
            header(&grant.headers, "x-ratelimit-limit-requests"),
            Some("1000")
        );
        assert_eq!(
            header(&grant.headers, "x-ratelimit-remaining-requests"),
            Some("999")
        );
        assert_eq!(
            header(&grant.headers, "x-ratelimit-reset-requests"),
            Some("11h59m30s")
        );
        assert_eq!(
            header(&grant.headers, "x-ratelimit-remaining-tokens"),
            Some("0")
        );
        assert_eq!(
            header(&grant.headers, "x-ratelimit-reset-tokens"),
            Some("30s")
        );
    }

    #[test]
    fn cerebras_names_every_window_and_words_its_refusal_without_retry_after() {
        let mut limiter = limiter(
            Dialect::Cerebras,
            KeyLimits {
                tpm: Some(50),
                rpd: Some(14_400),
                ..KeyLimits::default()
            },
        );
        let refusal = limiter
            .admit("k", "m", KeyLimits::default(), 60, NOON + 45_000)
            .expect_err("over the minute's tokens");
        assert_eq!(header(&refusal.headers, "retry-after"), None);
        assert_eq!(
            header(&refusal.headers, "x-ratelimit-remaining-tokens-minute"),
            Some("50")
        );
        assert_eq!(
            header(&refusal.headers, "x-ratelimit-reset-tokens-minute"),
            Some("15.000")
        );
        assert_eq!(
            header(&refusal.headers, "x-ratelimit-remaining-requests-day"),
            Some("14400")
        );
        assert_eq!(
            refusal.body["message"],
            "Tokens per minute limit exceeded - too many tokens processed."
        );
    }

    #[test]
    fn gemini_refuses_with_an_array_naming_the_window_and_sends_no_headers() {
        let mut limiter = limiter(
            Dialect::Gemini,
            KeyLimits {
                rpd: Some(1),
                ..KeyLimits::default()
            },
        );
        let grant = limiter
            .admit("k", "m", KeyLimits::default(), 5, NOON + 20_000)
            .expect("the first");
        assert!(grant.headers.is_empty());
        let refusal = limiter
            .admit("k", "m", KeyLimits::default(), 5, NOON + 20_000)
            .expect_err("the day is spent");
        assert!(refusal.headers.is_empty());
        let error = &refusal.body[0]["error"];
        assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
        let violation = &error["details"][0]["violations"][0];
        assert_eq!(
            violation["quotaId"],
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        );
        assert_eq!(violation["quotaValue"], "1");
        assert_eq!(error["details"][2]["retryDelay"], "40s");
    }

    #[test]
    fn openrouter_resets_at_an_epoch_in_milliseconds_copied_into_the_metadata() {
        let mut limiter = limiter(
            Dialect::OpenRouter,
            KeyLimits {
                rpd: Some(1),
                rpm: Some(20),
                ..KeyLimits::default()
            },
        );
        limiter
            .admit("k", "m", KeyLimits::default(), 5, NOON)
            .expect("the first");
        let refusal = limiter
            .admit("k", "other", KeyLimits::default(), 5, NOON)
            .expect_err("one pool for every free model");
        let midnight = (NOON + 12 * 3_600_000).to_string();
        assert_eq!(
            header(&refusal.headers, "X-RateLimit-Reset"),
            Some(midnight.as_str())
        );
        assert_eq!(
            refusal.body["error"]["metadata"]["headers"]["X-RateLimit-Reset"],
            midnight.as_str()
        );
        assert!(
            refusal.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("free-models-per-day")
        );
    }

    #[test]
    fn cerebras_counts_max_tokens_on_arrival_and_only_what_an_answer_adds_beyond_it() {
        let mut cerebras = limiter(
            Dialect::Cerebras,
            KeyLimits {
                tpm: Some(10_000),
                ..KeyLimits::default()
            },
        );
        let at = NOON + 1_000;
        let mut grant = cerebras
            .admit_asking("k", "m", KeyLimits::default(), 100, 6_000, at)
            .expect("6,100 of 10,000");
        cerebras.complete(&mut grant, 20, at);
        assert_eq!(
            header(&grant.headers, "x-ratelimit-remaining-tokens-minute"),
            Some("3900"),
            "the 20-token answer was already counted in the 6,000"
        );
        cerebras
            .admit_asking("k", "m", KeyLimits::default(), 100, 6_000, at)
            .expect_err("another 6,100 does not fit");
        let mut openai = limiter(
            Dialect::OpenAi,
            KeyLimits {
                tpm: Some(10_000),
                ..KeyLimits::default()
            },
        );
        let mut grant = openai
            .admit_asking("k", "m", KeyLimits::default(), 100, 6_000, at)
            .unwrap();
        openai.complete(&mut grant, 20, at);
        assert_eq!(
            header(&grant.headers, "x-ratelimit-remaining-tokens"),
            Some("9880")
        );
    }
}
