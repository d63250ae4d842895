//! Free-tier rate limits enforced like a real provider: fixed, aligned minute and day windows counted
//! per key (across all models) and per model and key.
//!
//! Everything here takes the time as a parameter (`now_ms`, milliseconds since the Unix epoch) so the
//! rules are testable without a clock; the server passes the real wall clock.

use std::collections::HashMap;

use super::dialect::Dialect;

/// Length of the minute window.
pub(crate) const MINUTE_MS: u64 = 60_000;
/// Length of the day window.
pub(crate) const DAY_MS: u64 = 86_400_000;
const MINUTES_PER_DAY: u32 = 1_440;

/// Requests and tokens allowed per minute and per day; `None` is unlimited.
///
/// Tokens are prompt plus completion tokens as the response's `usage` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub rpm: Option<u64>,
    pub rpd: Option<u64>,
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
}

impl KeyLimits {
    fn is_unlimited(&self) -> bool {
        *self == KeyLimits::default()
    }

    /// The set limits, in the order they are checked.
    fn each(&self) -> impl Iterator<Item = (Kind, Span, u64)> {
        [
            (Kind::Requests, Span::Minute, self.rpm),
            (Kind::Requests, Span::Day, self.rpd),
            (Kind::Tokens, Span::Minute, self.tpm),
            (Kind::Tokens, Span::Day, self.tpd),
        ]
        .into_iter()
        .filter_map(|(kind, span, limit)| limit.map(|limit| (kind, span, limit)))
    }
}

/// Start of the minute window holding `now_ms`: `floor(now_ms / 60000) * 60000`.
pub(crate) fn minute_window_start(now_ms: u64) -> u64 {
    now_ms / MINUTE_MS * MINUTE_MS
}

/// Start of the day window holding `now_ms`: the latest UTC midnight + `reset_minute` (taken modulo a
/// day) that is not after `now_ms`.
pub(crate) fn day_window_start(now_ms: u64, reset_minute: u32) -> u64 {
    let offset = u64::from(reset_minute % MINUTES_PER_DAY) * MINUTE_MS;
    // Before the first reset after the epoch there is no earlier one to fall back to.
    let Some(since_first_reset) = now_ms.checked_sub(offset) else {
        return 0;
    };
    since_first_reset / DAY_MS * DAY_MS + offset
}

/// Whether a limit counts requests or tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Requests,
    Tokens,
}

impl Kind {
    /// The suffix of its `x-ratelimit-*` headers.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Tokens => "tokens",
        }
    }
}

/// The window a limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Span {
    Minute,
    Day,
}

impl Span {
    /// `minute`, `day`: as header names and messages say it.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Span::Minute => "minute",
            Span::Day => "day",
        }
    }
}

/// What one request is counted under: its key alone, and the model it asked for with its key.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Scope {
    Key(String),
    Model { model: String, key: String },
}

/// Requests and tokens counted in the window starting at `start`.
#[derive(Clone, Copy, Debug, Default)]
struct Counter {
    start: u64,
    requests: u64,
    tokens: u64,
}

impl Counter {
    /// The counts in the window starting at `start` (zero once the stored window is over).
    fn at(self, start: u64) -> Counter {
        if self.start == start {
            self
        } else {
            Counter {
                start,
                requests: 0,
                tokens: 0,
            }
        }
    }

    fn used(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Requests => self.requests,
            Kind::Tokens => self.tokens,
        }
    }
}

/// The minute and day counters of one scope.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    minute: Counter,
    day: Counter,
}

/// The window boundaries at one instant.
#[derive(Clone, Copy, Debug)]
struct Windows {
    minute_start: u64,
    day_start: u64,
}

impl Windows {
    fn at(now_ms: u64, reset_minute: u32) -> Windows {
        Windows {
            minute_start: minute_window_start(now_ms),
            day_start: day_window_start(now_ms, reset_minute),
        }
    }

    fn end(&self, span: Span) -> u64 {
        match span {
            Span::Minute => self.minute_start + MINUTE_MS,
            Span::Day => self.day_start + DAY_MS,
        }
    }
}

impl Usage {
    /// Both counters moved to the current windows.
    fn current(self, windows: &Windows) -> Usage {
        Usage {
            minute: self.minute.at(windows.minute_start),
            day: self.day.at(windows.day_start),
        }
    }

    fn counter(&self, span: Span) -> &Counter {
        match span {
            Span::Minute => &self.minute,
            Span::Day => &self.day,
        }
    }

    fn add(&mut self, requests: u64, tokens: u64) {
        for counter in [&mut self.minute, &mut self.day] {
            counter.requests += requests;
            counter.tokens += tokens;
        }
    }
}

/// One set limit and how much of it the current window used.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Check {
    pub(crate) kind: Kind,
    pub(crate) span: Span,
    pub(crate) limit: u64,
    pub(crate) used: u64,
    /// When the window ends, in epoch milliseconds.
    pub(crate) end_ms: u64,
}

impl Check {
    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    fn label(&self) -> &'static str {
        match (self.kind, self.span) {
            (Kind::Requests, Span::Minute) => "requests per minute (RPM)",
            (Kind::Requests, Span::Day) => "requests per day (RPD)",
            (Kind::Tokens, Span::Minute) => "tokens per minute (TPM)",
            (Kind::Tokens, Span::Day) => "tokens per day (TPD)",
        }
    }
}

/// An admitted request: where it was counted, and the rate-limit headers of its response.
#[derive(Clone, Debug, Default)]
pub(crate) struct Grant {
    scopes: Vec<(Scope, KeyLimits)>,
    /// Completion tokens already counted on arrival (Cerebras counts `max_tokens` up front).
    prepaid_completion: u64,
    /// `x-ratelimit-*` headers for the tightest limits, remaining counted after this request.
    pub headers: Vec<(String, String)>,
}

/// A request refused because a limit was hit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Refusal {
    /// `"requests"` or `"tokens"`, the error's `type`.
    pub kind: &'static str,
    pub message: String,
    /// Whole seconds until the blocking window ends, at least 1.
    pub retry_after_secs: u64,
    /// The refusal's headers in the simulator's dialect (`retry-after`, `x-ratelimit-*`…).
    pub headers: Vec<(String, String)>,
    /// The 429's body in the simulator's dialect.
    pub body: serde_json::Value,
}

/// The limits and the counters of one simulator.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    day_reset_minute: u32,
    dialect: Dialect,
    keys: HashMap<String, KeyLimits>,
    usage: HashMap<Scope, Usage>,
    refusals: usize,
}

impl Limiter {
    pub(crate) fn limit_key(&mut self, key: &str, limits: KeyLimits) {
        if limits.is_unlimited() {
            self.keys.remove(key);
        } else {
            self.keys.insert(key.to_string(), limits);
        }
    }

    pub(crate) fn set_day_reset_minute(&mut self, minute: u32) {
        self.day_reset_minute = minute;
    }

    pub(crate) fn set_dialect(&mut self, dialect: Dialect) {
        self.dialect = dialect;
    }

    pub(crate) fn refusals(&self) -> usize {
        self.refusals
    }

    /// Admits a request with `prompt_tokens` from `key` to `model` (whose own per-key limits are
    /// `model_limits`) and counts it, or refuses it without counting.
    #[cfg(test)]
    pub(crate) fn admit(
        &mut self,
        key: &str,
        model: &str,
        model_limits: KeyLimits,
        prompt_tokens: u64,
        now_ms: u64,
    ) -> Result<Grant, Refusal> {
        self.admit_asking(key, model, model_limits, prompt_tokens, 0, now_ms)
    }

    /// [`Limiter::admit`] for a request asking for `max_tokens` of output: a dialect that counts
    /// them before answering ([`Dialect::counts_max_tokens`]) counts them on arrival.
    pub(crate) fn admit_asking(
        &mut self,
        key: &str,
        model: &str,
        model_limits: KeyLimits,
        prompt_tokens: u64,
        max_tokens: u64,
        now_ms: u64,
    ) -> Result<Grant, Refusal> {
        let prepaid_completion = if self.dialect.counts_max_tokens() {
            max_tokens
        } else {
            0
        };
        let prompt_tokens = prompt_tokens.saturating_add(prepaid_completion);
        let mut scopes = Vec::new();
        if let Some(limits) = self.keys.get(key) {
            scopes.push((Scope::Key(key.to_string()), *limits));
        }
        if !model_limits.is_unlimited() {
            let scope = Scope::Model {
                model: model.to_string(),
                key: key.to_string(),
            };
            scopes.push((scope, model_limits));
        }
        if scopes.is_empty() {
            return Ok(Grant::default());
        }
        let windows = Windows::at(now_ms, self.day_reset_minute);
        let checks = self.checks(&scopes, &windows);
        let need = |check: &Check| match check.kind {
            Kind::Requests => 1,
            Kind::Tokens => prompt_tokens,
        };
        // The blocking limit whose window ends last decides when a retry can succeed.
        let blocking = checks
            .iter()
            .filter(|c| c.used.saturating_add(need(c)) > c.limit)
            .reduce(|latest, c| if c.end_ms > latest.end_ms { c } else { latest });
        if let Some(block) = blocking {
            self.refusals += 1;
            let wait_ms = block.end_ms - now_ms;
            let message = format!(
                "Rate limit reached for {}: Limit {}, Used {}, Requested {}. Please try again in {}.",
                block.label(),
                block.limit,
                block.used,
                need(block),
                go_duration(wait_ms),
            );
            let form = self.dialect.refusal(block, &checks, &message, now_ms);
            return Err(Refusal {
                kind: block.kind.suffix(),
                message,
                retry_after_secs: wait_ms.div_ceil(1_000).max(1),
                headers: form.headers,
                body: form.body,
            });
        }
        self.add(&scopes, &windows, 1, prompt_tokens);
        let headers = self
            .dialect
            .headers(&self.checks(&scopes, &windows), now_ms);
        Ok(Grant {
            scopes,
            prepaid_completion,
            headers,
        })
    }

    /// Counts the completion tokens of an admitted request in its current windows and refreshes its
    /// headers.
    pub(crate) fn complete(&mut self, grant: &mut Grant, completion_tokens: u64, now_ms: u64) {
        if grant.scopes.is_empty() {
            return;
        }
        let windows = Windows::at(now_ms, self.day_reset_minute);
        let completion_tokens = completion_tokens.saturating_sub(grant.prepaid_completion);
        self.add(&grant.scopes, &windows, 0, completion_tokens);
        grant.headers = self
            .dialect
            .headers(&self.checks(&grant.scopes, &windows), now_ms);
    }

    fn checks(&self, scopes: &[(Scope, KeyLimits)], windows: &Windows) -> Vec<Check> {
        let mut checks = Vec::new();
        for (scope, limits) in scopes {
            let usage = self
                .usage
                .get(scope)
                .copied()
                .unwrap_or_default()
                .current(windows);
            for (kind, span, limit) in limits.each() {
                checks.push(Check {
                    kind,
                    span,
                    limit,
                    used: usage.counter(span).used(kind),
                    end_ms: windows.end(span),
                });
            }
        }
        checks
    }

    fn add(
        &mut self,
        scopes: &[(Scope, KeyLimits)],
        windows: &Windows,
        requests: u64,
        tokens: u64,
    ) {
        for (scope, _) in scopes {
            let usage = self.usage.entry(scope.clone()).or_default();
            *usage = usage.current(windows);
            usage.add(requests, tokens);
        }
    }
}

/// A Go-style duration as OpenAI-compatible providers send it: `500ms`, `12.5s`, `2m59.56s`,
/// `23h59m59.9s`, `0s`.
pub(crate) fn go_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let millis = ms % 60_000;
    let seconds = if millis.is_multiple_of(1_000) {
        (millis / 1_000).to_string()
    } else {
        let fraction = format!("{:03}", millis % 1_000);
        format!("{}.{}", millis / 1_000, fraction.trim_end_matches('0'))
    };
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-06-01T12:00:00Z, a minute boundary.
    const NOON: u64 = 1_748_779_200_000;

    fn limits(rpm: Option<u64>, tpm: Option<u64>) -> KeyLimits {
        KeyLimits {
            rpm,
            tpm,
            ..KeyLimits::default()
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_minute_window_is_aligned_to_whole_minutes() {
        assert_eq!(minute_window_start(NOON), NOON);
        assert_eq!(minute_window_start(NOON + 59_999), NOON);
        assert_eq!(minute_window_start(NOON + 60_000), NOON + 60_000);
    }

    #[test]
    fn the_day_window_starts_at_utc_midnight_plus_the_reset_minute() {
        let midnight = NOON - 12 * 3_600_000;
        assert_eq!(day_window_start(NOON, 0), midnight);
        assert_eq!(day_window_start(midnight, 0), midnight);
        assert_eq!(day_window_start(midnight - 1, 0), midnight - DAY_MS);
        // Resetting at 07:00 UTC: noon is in the day that began at 07:00 today…
        let seven = midnight + 7 * 3_600_000;
        assert_eq!(day_window_start(NOON, 7 * 60), seven);
        assert_eq!(day_window_start(seven, 7 * 60), seven);
        // …and 06:59:59.999 is still in the one that began at 07:00 yesterday.
        assert_eq!(day_window_start(seven - 1, 7 * 60), seven - DAY_MS);
        // Minutes past a day wrap around.
        assert_eq!(day_window_start(NOON, 7 * 60 + 1_440), seven);
        assert_eq!(day_window_start(5, 30), 0, "before the first reset");
    }

    #[test]
    fn an_rpm_refusal_waits_for_the_end_of_the_minute() {
        let mut limiter = Limiter::default();
        limiter.limit_key("k", limits(Some(2), None));
        let now = NOON + 47_500;
        for _ in 0..2 {
            assert!(
                limiter
                    .admit("k", "m", KeyLimits::default(), 5, now)
                    .is_ok()
            );
        }
        let refusal = limiter
            .admit("k", "m", KeyLimits::default(), 5, now)
            .expect_err("third request in the minute");
        assert_eq!(refusal.retry_after_secs, 13, "12.5 s rounded up");
        assert_eq!(refusal.kind, "requests");
        assert!(
            refusal
                .message
                .starts_with("Rate limit reached for requests per minute (RPM): Limit 2, Used 2"),
            "{}",
            refusal.message
        );
        assert_eq!(
            header(&refusal.headers, "x-ratelimit-remaining-requests"),
            Some("0")
        );
        assert_eq!(
            header(&refusal.headers, "x-ratelimit-reset-requests"),
            Some("12.5s")
        );
        assert_eq!(header(&refusal.headers, "x-ratelimit-limit-tokens"), None);
        assert_eq!(limiter.refusals(), 1);
        // Refused requests are not counted: the next minute admits two again.
        let next = NOON + MINUTE_MS;
        assert!(
            limiter
                .admit("k", "m", KeyLimits::default(), 5, next)
                .is_ok()
        );
        assert!(
            limiter
                .admit("k", "m", KeyLimits::default(), 5, next)
                .is_ok()
        );
    }

    #[test]
    fn a_model_limit_counts_each_key_separately() {
        let mut limiter = Limiter::default();
        let per_model = limits(Some(1), None);
        assert!(limiter.admit("a", "m", per_model, 1, NOON).is_ok());
        assert!(limiter.admit("a", "m", per_model, 1, NOON).is_err());
        assert!(limiter.admit("b", "m", per_model, 1, NOON).is_ok());
        assert!(limiter.admit("a", "other", per_model, 1, NOON).is_ok());
        assert!(
            limiter
                .admit("a", "free", KeyLimits::default(), 1, NOON)
                .is_ok()
        );
    }

    #[test]
    fn tpm_counts_prompt_tokens_at_admission_and_completion_tokens_after() {
        let mut limiter = Limiter::default();
        limiter.limit_key("k", limits(None, Some(100)));
        let mut grant = limiter
            .admit("k", "m", KeyLimits::default(), 60, NOON)
            .expect("60 of 100");
        assert_eq!(
            header(&grant.headers, "x-ratelimit-remaining-tokens"),
            Some("40")
        );
        limiter.complete(&mut grant, 10, NOON + 1);
        assert_eq!(
            header(&grant.headers, "x-ratelimit-remaining-tokens"),
            Some("30")
        );
        let refusal = limiter
            .admit("k", "m", KeyLimits::default(), 31, NOON + 2)
            .expect_err("70 + 31 > 100");
        assert!(
            refusal.message.starts_with(
                "Rate limit reached for tokens per minute (TPM): Limit 100, Used 70, Requested 31"
            ),
            "{}",
            refusal.message
        );
        assert_eq!(refusal.kind, "tokens");
        assert!(
            limiter
                .admit("k", "m", KeyLimits::default(), 30, NOON + 3)
                .is_ok()
        );
    }

    #[test]
    fn an_rpd_refusal_waits_for_the_configured_day_reset() {
        let mut limiter = Limiter::default();
        limiter.set_day_reset_minute(13 * 60);
        let daily = KeyLimits {
            rpm: Some(10),
            rpd: Some(1),
            ..KeyLimits::default()
        };
        limiter.limit_key("k", daily);
        assert!(
            limiter
                .admit("k", "m", KeyLimits::default(), 1, NOON)
                .is_ok()
        );
        let refusal = limiter
            .admit("k", "m", KeyLimits::default(), 1, NOON + 1_000)
            .expect_err("one a day");
        assert_eq!(refusal.retry_after_secs, 3_599);
        assert!(refusal.message.contains("requests per day (RPD)"));
        assert_eq!(
            header(&refusal.headers, "x-ratelimit-reset-requests"),
            Some("59m59s")
        );
        assert!(
            limiter
                .admit("k", "m", KeyLimits::default(), 1, NOON + 3_600_000)
                .is_ok()
        );
    }

    #[test]
    fn success_headers_show_the_tightest_remaining_limit() {
        let mut limiter = Limiter::default();
        limiter.limit_key(
            "k",
            KeyLimits {
                rpm: Some(30),
                rpd: Some(1_000),
                tpm: Some(6_000),
                tpd: None,
            },
        );
        let grant = limiter
            .admit("k", "m", limits(Some(5), None), 100, NOON + 30_000)
            .expect("first");
        let expected = [
            ("x-ratelimit-limit-requests", "5"),
            ("x-ratelimit-remaining-requests", "4"),
            ("x-ratelimit-reset-requests", "30s"),
            ("x-ratelimit-limit-tokens", "6000"),
            ("x-ratelimit-remaining-tokens", "5900"),
            ("x-ratelimit-reset-tokens", "30s"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(grant.headers, expected);
        let free = limiter
            .admit("other", "m", KeyLimits::default(), 100, NOON)
            .expect("unlimited");
        assert!(free.headers.is_empty());
    }

    #[test]
    fn durations_are_written_go_style() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(500), "500ms");
        assert_eq!(go_duration(12_500), "12.5s");
        assert_eq!(go_duration(179_560), "2m59.56s");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(DAY_MS - 100), "23h59m59.9s");
    }
}
