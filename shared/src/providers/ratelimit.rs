//! Rate-limit headers in all their forms: `Retry-After`, `x-ratelimit-{remaining,reset}-*`.
//!
//! Reset values arrive as integer or fractional seconds, Go-style durations (`2m59.56s`, `500ms`),
//! epoch seconds or milliseconds, and HTTP dates; all become milliseconds from `now`. Several
//! windows in one answer are kept apart, each remaining with its own reset.

use crate::time::EpochMs;
use ::http::header::HeaderMap;

/// One window a provider reported on: its remaining count paired with its own reset (never with
/// another window's). Groq's `-requests` headers describe the day and its `-tokens` ones the
/// minute; Cerebras names both (`-requests-day`, `-tokens-minute`); OpenRouter sends bare
/// `X-RateLimit-*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowHint {
    /// The header suffix after `x-ratelimit-{limit,remaining,reset}`: `""`, `-requests`,
    /// `-tokens-minute`, …
    pub suffix: String,
    pub counts_tokens: bool,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Milliseconds from now until this window refills.
    pub reset_ms: Option<u64>,
}

impl WindowHint {
    fn is_spent(&self) -> bool {
        self.remaining == Some(0)
    }
}

/// What one upstream response said about the key's limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// `Retry-After`, in milliseconds from now.
    pub retry_after_ms: Option<u64>,
    /// The tightest request window (fewest left): its remaining and its own reset.
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_requests_ms: Option<u64>,
    pub reset_tokens_ms: Option<u64>,
    /// Every window the headers named, each as said.
    pub windows: Vec<WindowHint>,
    /// The windows are the key's across all its models (OpenRouter's free pool), not this
    /// model's: a spent one rests the key on every route. Set by the adapter that knows.
    pub whole_key: bool,
}

impl RateLimitInfo {
    pub fn from_headers(headers: &HeaderMap, now: EpochMs) -> Self {
        Self::from_pairs(
            headers
                .iter()
                .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
            now,
        )
    }

    /// The same from name/value pairs in any letter case (OpenRouter copies its headers into
    /// `error.metadata.headers`).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: EpochMs,
    ) -> Self {
        let mut info = RateLimitInfo::default();
        for (name, value) in pairs {
            let name = name.to_ascii_lowercase();
            if name == "retry-after" {
                info.retry_after_ms = parse_reset(value, now);
                continue;
            }
            let Some(rest) = name.strip_prefix("x-ratelimit-") else {
                continue;
            };
            let (field, suffix) = match rest.split_once('-') {
                Some((field, suffix)) => (field, format!("-{suffix}")),
                None => (rest, String::new()),
            };
            let parsed = match field {
                "remaining" | "limit" => value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .map(|n| n as u64),
                "reset" => parse_reset(value, now),
                _ => continue,
            };
            let Some(parsed) = parsed else { continue };
            let window = info.window_mut(&suffix);
            match field {
                "remaining" => window.remaining = Some(parsed),
                "limit" => window.limit = Some(parsed),
                _ => window.reset_ms = Some(parsed),
            }
        }
        for tokens in [false, true] {
            // The tightest window of the kind: fewest left, on a tie the one that refills last.
            let tightest = info
                .windows
                .iter()
                .filter(|w| w.counts_tokens == tokens && w.remaining.is_some())
                .min_by(|a, b| {
                    a.remaining
                        .cmp(&b.remaining)
                        .then(b.reset_ms.cmp(&a.reset_ms))
                })
                .or_else(|| {
                    info.windows
                        .iter()
                        .filter(|w| w.counts_tokens == tokens && w.reset_ms.is_some())
                        .min_by_key(|w| w.reset_ms)
                })
                .map(|w| (w.remaining, w.reset_ms));
            let (remaining, reset) = tightest.unwrap_or_default();
            if tokens {
                (info.remaining_tokens, info.reset_tokens_ms) = (remaining, reset);
            } else {
                (info.remaining_requests, info.reset_requests_ms) = (remaining, reset);
            }
        }
        info
    }

    fn window_mut(&mut self, suffix: &str) -> &mut WindowHint {
        let at = match self.windows.iter().position(|w| w.suffix == suffix) {
            Some(at) => at,
            None => {
                self.windows.push(WindowHint {
                    suffix: suffix.to_string(),
                    counts_tokens: suffix.contains("token"),
                    ..WindowHint::default()
                });
                self.windows.len() - 1
            }
        };
        &mut self.windows[at]
    }

    /// How long until the key may be used again, as far as the provider said.
    ///
    /// `Retry-After` wins; else the latest reset among the windows at zero, each window's own
    /// (a spent minute beside a day with room rests for the minute); else, on a 429 that names no
    /// spent window, the soonest reset given (trying again then costs one request, resting until
    /// a day turns for a minute's refusal costs the day).
    pub fn wait_hint_ms(&self, refused: bool) -> Option<u64> {
        if let Some(ms) = self.retry_after_ms {
            return Some(ms);
        }
        let exhausted = self
            .windows
            .iter()
            .filter(|w| w.is_spent())
            .filter_map(|w| w.reset_ms)
            .max();
        if exhausted.is_some() || !refused {
            return exhausted;
        }
        self.windows.iter().filter_map(|w| w.reset_ms).min()
    }

    /// Whether the provider said something is spent (a remaining counter at zero).
    pub fn is_exhausted(&self) -> bool {
        self.windows.iter().any(WindowHint::is_spent)
    }

    pub fn is_empty(&self) -> bool {
        *self == RateLimitInfo::default()
    }
}

/// The furthest reset believed: a year. Beyond it a value is nonsense, and adding it to a clock
/// would overflow.
pub const MAX_RESET_MS: u64 = 366 * 24 * 3_600_000;

/// Parses one reset value into milliseconds from `now` (0 when it is already past), at most
/// [`MAX_RESET_MS`].
pub fn parse_reset(value: &str, now: EpochMs) -> Option<u64> {
    parse_reset_unbounded(value, now).map(|ms| ms.min(MAX_RESET_MS))
}

fn parse_reset_unbounded(value: &str, now: EpochMs) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(number) = value.parse::<f64>() {
        if !number.is_finite() || number < 0.0 {
            return None;
        }
        // Large numbers are absolute times: epoch milliseconds, else epoch seconds.
        if number >= 1e12 {
            return Some((number as i64 - now).max(0) as u64);
        }
        if number >= 1e9 {
            return Some(((number * 1000.0) as i64 - now).max(0) as u64);
        }
        return Some((number * 1000.0).round() as u64);
    }
    if let Some(ms) = parse_go_duration(value) {
        return Some(ms);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    let when_ms = when.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
    Some((when_ms - now).max(0) as u64)
}

/// `1h2m3.5s`, `2m59.56s`, `7.66s`, `500ms`, `1.5m` → milliseconds.
fn parse_go_duration(value: &str) -> Option<u64> {
    let mut total_ms = 0f64;
    let mut rest = value;
    let mut parsed_any = false;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ms += number * factor;
        parsed_any = true;
    }
    (parsed_any && total_ms.is_finite()).then_some(total_ms.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::header::{HeaderName, HeaderValue};

    const NOW: EpochMs = 1_800_000_000_000;

    #[test]
    fn every_reset_form_becomes_milliseconds_from_now() {
        assert_eq!(parse_reset("30", NOW), Some(30_000));
        assert_eq!(parse_reset("7.66s", NOW), Some(7_660));
        assert_eq!(parse_reset("2m59.56s", NOW), Some(179_560));
        assert_eq!(parse_reset("1m30s", NOW), Some(90_000));
        assert_eq!(parse_reset("500ms", NOW), Some(500));
        assert_eq!(parse_reset("1h", NOW), Some(3_600_000));
        assert_eq!(parse_reset("0.5", NOW), Some(500));
        assert_eq!(
            parse_reset("1800000042", NOW),
            Some(42_000),
            "epoch seconds"
        );
        assert_eq!(
            parse_reset("1800000001500", NOW),
            Some(1_500),
            "epoch milliseconds"
        );
        let date = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(NOW as u64 + 60_000),
        );
        assert_eq!(parse_reset(&date, NOW), Some(60_000), "HTTP date");
        assert_eq!(
            parse_reset("Wed, 21 Oct 2015 07:28:00 GMT", NOW),
            Some(0),
            "past date"
        );
        for absurd in ["2562047500000h", "99999999999999999999", "1e300"] {
            assert_eq!(parse_reset(absurd, NOW), Some(MAX_RESET_MS), "{absurd}");
        }
        for junk in ["", "soon", "-5", "5x", "m", "NaN", "1e400"] {
            assert_eq!(parse_reset(junk, NOW), None, "{junk}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn retry_after_wins_over_every_other_hint() {
        let info = RateLimitInfo::from_headers(
            &headers(&[("retry-after", "30"), ("x-ratelimit-reset-requests", "2s")]),
            NOW,
        );
        assert_eq!(info.wait_hint_ms(true), Some(30_000));
    }

    #[test]
    fn the_reset_of_the_exhausted_counter_is_the_hint() {
        let info = RateLimitInfo::from_headers(
            &headers(&[
                ("x-ratelimit-remaining-requests", "5"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-requests", "2m59.56s"),
                ("x-ratelimit-reset-tokens", "7.66s"),
            ]),
            NOW,
        );
        assert!(info.is_exhausted());
        assert_eq!(info.wait_hint_ms(false), Some(7_660));
        let cerebras = RateLimitInfo::from_headers(
            &headers(&[
                ("x-ratelimit-remaining-requests-day", "0"),
                ("x-ratelimit-reset-requests-day", "3600"),
                ("x-ratelimit-remaining-tokens-minute", "100"),
            ]),
            NOW,
        );
        assert_eq!(cerebras.wait_hint_ms(false), Some(3_600_000));
    }

    #[test]
    fn a_healthy_response_gives_no_hint_and_a_bare_429_none_either() {
        let info =
            RateLimitInfo::from_headers(&headers(&[("x-ratelimit-remaining-requests", "9")]), NOW);
        assert_eq!(info.wait_hint_ms(false), None);
        assert_eq!(RateLimitInfo::default().wait_hint_ms(true), None);
    }

    #[test]
    fn groq_s_day_and_minute_windows_are_kept_apart_each_with_its_own_reset() {
        // Groq: `-requests` is the day (RPD), `-tokens` the minute (TPM).
        let info = RateLimitInfo::from_headers(
            &headers(&[
                ("x-ratelimit-limit-requests", "1000"),
                ("x-ratelimit-remaining-requests", "14"),
                ("x-ratelimit-reset-requests", "23h10m"),
                ("x-ratelimit-limit-tokens", "12000"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "7.66s"),
            ]),
            NOW,
        );
        assert_eq!(info.windows.len(), 2);
        assert_eq!(info.remaining_requests, Some(14));
        assert_eq!(info.reset_requests_ms, Some(83_400_000));
        assert_eq!(
            info.wait_hint_ms(false),
            Some(7_660),
            "a spent minute rests for the minute, not until the day resets"
        );
    }

    #[test]
    fn cerebras_named_windows_pair_each_remaining_with_its_own_reset() {
        let info = RateLimitInfo::from_headers(
            &headers(&[
                ("x-ratelimit-limit-requests-day", "14400"),
                ("x-ratelimit-remaining-requests-day", "14000"),
                ("x-ratelimit-reset-requests-day", "33011.38"),
                ("x-ratelimit-limit-tokens-minute", "60000"),
                ("x-ratelimit-remaining-tokens-minute", "0"),
                ("x-ratelimit-reset-tokens-minute", "21.4"),
            ]),
            NOW,
        );
        let day = info
            .windows
            .iter()
            .find(|w| w.suffix == "-requests-day")
            .expect("the day window");
        assert_eq!(
            (day.limit, day.remaining, day.reset_ms),
            (Some(14_400), Some(14_000), Some(33_011_380))
        );
        assert_eq!(info.wait_hint_ms(false), Some(21_400));
        assert_eq!(info.wait_hint_ms(true), Some(21_400));
    }

    #[test]
    fn a_429_naming_no_spent_window_waits_for_the_soonest_reset_not_the_latest() {
        // A request larger than the minute's tokens left: the minute refused it, the day has room.
        let info = RateLimitInfo::from_headers(
            &headers(&[
                ("x-ratelimit-remaining-requests-day", "900"),
                ("x-ratelimit-reset-requests-day", "40000"),
                ("x-ratelimit-remaining-tokens-minute", "120"),
                ("x-ratelimit-reset-tokens-minute", "12"),
            ]),
            NOW,
        );
        assert_eq!(info.wait_hint_ms(true), Some(12_000));
        assert_eq!(
            info.wait_hint_ms(false),
            None,
            "an answer with room says nothing"
        );
    }

    #[test]
    fn openrouter_s_bare_headers_reset_at_an_epoch_in_milliseconds() {
        let reset = (NOW + 5 * 3_600_000).to_string();
        let info = RateLimitInfo::from_pairs(
            [
                ("X-RateLimit-Limit", "50"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", reset.as_str()),
            ],
            NOW,
        );
        assert_eq!(info.remaining_requests, Some(0));
        assert_eq!(info.wait_hint_ms(true), Some(5 * 3_600_000));
    }
}
