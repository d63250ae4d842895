//! Rate-limit headers in all their forms: `Retry-After`, `x-ratelimit-{remaining,reset}-*`.
//!
//! Reset values arrive as integer or fractional seconds, Go-style durations (`2m59.56s`, `500ms`),
//! epoch seconds or milliseconds, and HTTP dates; all become milliseconds from `now`.

use crate::time::EpochMs;
use reqwest::header::HeaderMap;

/// What one upstream response said about the key's limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// `Retry-After`, in milliseconds from now.
    pub retry_after_ms: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_requests_ms: Option<u64>,
    pub reset_tokens_ms: Option<u64>,
}

impl RateLimitInfo {
    pub fn from_headers(headers: &HeaderMap, now: EpochMs) -> Self {
        let mut info = RateLimitInfo::default();
        for (name, value) in headers {
            let Ok(value) = value.to_str() else { continue };
            let name = name.as_str();
            if name == "retry-after" {
                info.retry_after_ms = parse_reset(value, now);
            } else if let Some(rest) = name.strip_prefix("x-ratelimit-remaining") {
                let Some(n) = value.trim().parse::<f64>().ok().filter(|n| *n >= 0.0) else {
                    continue;
                };
                let slot = if rest.contains("token") {
                    &mut info.remaining_tokens
                } else {
                    &mut info.remaining_requests
                };
                *slot = Some(slot.map_or(n as u64, |old| old.min(n as u64)));
            } else if let Some(rest) = name.strip_prefix("x-ratelimit-reset") {
                let Some(ms) = parse_reset(value, now) else {
                    continue;
                };
                let slot = if rest.contains("token") {
                    &mut info.reset_tokens_ms
                } else {
                    &mut info.reset_requests_ms
                };
                *slot = Some(slot.map_or(ms, |old| old.max(ms)));
            }
        }
        info
    }

    /// How long until the key may be used again, as far as the provider said.
    ///
    /// `Retry-After` wins; else the reset of whatever is at zero; else, on a 429, the latest reset given.
    pub fn wait_hint_ms(&self, refused: bool) -> Option<u64> {
        if let Some(ms) = self.retry_after_ms {
            return Some(ms);
        }
        let requests_out = self.remaining_requests == Some(0);
        let tokens_out = self.remaining_tokens == Some(0);
        let exhausted = [
            self.reset_requests_ms.filter(|_| requests_out),
            self.reset_tokens_ms.filter(|_| tokens_out),
        ]
        .into_iter()
        .flatten()
        .max();
        if exhausted.is_some() || !refused {
            return exhausted;
        }
        self.reset_requests_ms
            .into_iter()
            .chain(self.reset_tokens_ms)
            .max()
    }

    /// Whether the provider said something is spent (a remaining counter at zero).
    pub fn is_exhausted(&self) -> bool {
        self.remaining_requests == Some(0) || self.remaining_tokens == Some(0)
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
    use reqwest::header::{HeaderName, HeaderValue};

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
}
