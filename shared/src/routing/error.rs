//! Why the engine could not serve a request, in terms the HTTP face maps to statuses.

use super::request::InvalidRequest;
use super::trail::Trail;
use crate::time::EpochMs;
use bytes::Bytes;

/// When one provider's routes are back for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refill {
    pub provider: String,
    pub at_ms: EpochMs,
}

/// The soonest refill of each provider, soonest first.
pub fn refills(pairs: impl IntoIterator<Item = (String, EpochMs)>) -> Vec<Refill> {
    let mut soonest: Vec<Refill> = Vec::new();
    for (provider, at_ms) in pairs {
        match soonest.iter_mut().find(|r| r.provider == provider) {
            Some(known) => known.at_ms = known.at_ms.min(at_ms),
            None => soonest.push(Refill { provider, at_ms }),
        }
    }
    soonest.sort_by_key(|r| (r.at_ms, r.provider.clone()));
    soonest
}

/// "; back: groq at 14:05:10 UTC, cohere on 2027-01-01 at 00:00:00 UTC" (the first few): a
/// refill more than a day after the soonest one (which is `retry_after_ms` from now) is dated.
fn refill_note(refills: &[Refill], retry_after_ms: u64) -> String {
    let Some(soonest) = refills.first() else {
        return String::new();
    };
    let now = soonest.at_ms - retry_after_ms.min(i64::MAX as u64) as EpochMs;
    let listed: Vec<String> = refills
        .iter()
        .take(6)
        .map(|r| format!("{} {}", r.provider, utc_moment(r.at_ms, now)))
        .collect();
    format!("; back: {}", listed.join(", "))
}

/// "at 14:05:10 UTC", or "on 2027-01-01 at 00:00:00 UTC" when the instant is more than a day after
/// `now` (a monthly window's return, say).
pub fn utc_moment(at_ms: EpochMs, now: EpochMs) -> String {
    if at_ms - now > crate::quota::window::DAY_MS {
        format!(
            "on {} at {}",
            crate::quota::window::utc_date(at_ms),
            utc_time(at_ms)
        )
    } else {
        format!("at {}", utc_time(at_ms))
    }
}

/// `HH:MM:SS UTC` of an instant (the day is left out: [`utc_moment`] dates what is further).
pub fn utc_time(at_ms: EpochMs) -> String {
    let seconds = at_ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod refill_tests {
    use super::*;

    #[test]
    fn each_provider_s_soonest_refill_is_named_soonest_first() {
        let back = refills([
            ("gemini".to_string(), 8 * 3_600_000),
            ("groq".to_string(), 3_600_000 + 30_000),
            ("gemini".to_string(), 9 * 3_600_000),
        ]);
        assert_eq!(
            refill_note(&back, 30_000),
            "; back: groq at 01:00:30 UTC, gemini at 08:00:00 UTC"
        );
        assert_eq!(refill_note(&[], 0), "");
    }

    #[test]
    fn a_refill_more_than_a_day_away_is_named_with_its_date() {
        let new_year_2027 = 1_798_761_600_000;
        let back = refills([
            ("groq".to_string(), new_year_2027 - 10 * 86_400_000 + 60_000),
            ("cohere".to_string(), new_year_2027),
        ]);
        assert_eq!(
            refill_note(&back, 60_000),
            "; back: groq at 00:01:00 UTC, cohere on 2027-01-01 at 00:00:00 UTC"
        );
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("{0}")]
    InvalidRequest(#[from] InvalidRequest),
    /// No route can be called at all; `missing_vars` are the variables that would add some.
    #[error("no route is configured or enabled")]
    NoRoutesAvailable { missing_vars: Vec<String> },
    /// A strict request named a model that is unknown or disabled.
    #[error("the model `{model}` does not exist or is disabled")]
    ModelNotFound { model: String },
    #[error(
        "the prompt ({needed_tokens} tokens estimated) is larger than every eligible route's context window"
    )]
    ContextLengthExceeded { needed_tokens: u64, trail: Trail },
    /// No enabled route has what the request needs.
    #[error("no enabled route supports what this request needs: {}", tags.join(", "))]
    NoCapableRoute { tags: Vec<String> },
    /// Every eligible route is cooling or out of quota; the soonest one is back in
    /// `retry_after_ms`, and `refills` says when each provider is (soonest first).
    #[error(
        "every eligible route is cooling or out of quota{}",
        refill_note(refills, *retry_after_ms)
    )]
    QuotaExhausted {
        retry_after_ms: u64,
        refills: Vec<Refill>,
        trail: Trail,
    },
    #[error("every route tried failed upstream")]
    AllRoutesFailed { trail: Trail },
    /// The upstream refused the request itself (a content policy, an invalid parameter): passed on as-is.
    #[error("the upstream refused the request: {message}")]
    UpstreamRejected {
        status: u16,
        message: String,
        body: Option<Bytes>,
        trail: Trail,
    },
}

impl RoutingError {
    /// A low-cardinality label for metrics and the request log.
    pub fn kind(&self) -> &'static str {
        match self {
            RoutingError::InvalidRequest(_) => "invalid_request",
            RoutingError::NoRoutesAvailable { .. } => "no_routes_available",
            RoutingError::ModelNotFound { .. } => "model_not_found",
            RoutingError::ContextLengthExceeded { .. } => "context_length_exceeded",
            RoutingError::NoCapableRoute { .. } => "unsupported_capability",
            RoutingError::QuotaExhausted { .. } => "quota_exhausted",
            RoutingError::AllRoutesFailed { .. } => "all_routes_failed",
            RoutingError::UpstreamRejected { .. } => "upstream_rejected",
        }
    }

    pub fn trail(&self) -> Option<&Trail> {
        match self {
            RoutingError::ContextLengthExceeded { trail, .. }
            | RoutingError::QuotaExhausted { trail, .. }
            | RoutingError::AllRoutesFailed { trail }
            | RoutingError::UpstreamRejected { trail, .. } => Some(trail),
            _ => None,
        }
    }
}
