//! The health records of one route and of one key, and their pure transitions.

use crate::time::EpochMs;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Healthy,
    Cooling,
    TooSlow,
    PotentiallyOutdated,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Cooling => "cooling",
            HealthState::TooSlow => "too_slow",
            HealthState::PotentiallyOutdated => "potentially_outdated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            HealthState::Healthy,
            HealthState::Cooling,
            HealthState::TooSlow,
            HealthState::PotentiallyOutdated,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    pub const ALL: [HealthState; 4] = [
        HealthState::Healthy,
        HealthState::Cooling,
        HealthState::TooSlow,
        HealthState::PotentiallyOutdated,
    ];
}

/// What the gateway knows about one route, across keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteHealth {
    pub route_id: String,
    pub state: HealthState,
    /// While in the future the route is not a candidate (an outage or a route-wide limit).
    pub cooldown_until_ms: EpochMs,
    pub consecutive_failures: u32,
    pub consecutive_timeouts: u32,
    pub consecutive_not_found: u32,
    /// The window the provider really enforces, learned from a context-length refusal.
    pub learned_context_window: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<EpochMs>,
    pub last_success_ms: Option<EpochMs>,
}

impl RouteHealth {
    pub fn new(route_id: &str) -> Self {
        Self {
            route_id: route_id.to_string(),
            state: HealthState::Healthy,
            cooldown_until_ms: 0,
            consecutive_failures: 0,
            consecutive_timeouts: 0,
            consecutive_not_found: 0,
            learned_context_window: None,
            last_error: None,
            last_error_ms: None,
            last_success_ms: None,
        }
    }

    /// The state as of `now`: a cooldown that has run out reads as healthy (half-open). An
    /// outdated route is tried again once its re-probe time has come (the gateway finds out by
    /// itself whether the model is back, without waiting for the maintainer).
    pub fn effective_state(&self, now: EpochMs) -> HealthState {
        match self.state {
            HealthState::Cooling | HealthState::TooSlow | HealthState::PotentiallyOutdated
                if self.cooldown_until_ms <= now =>
            {
                HealthState::Healthy
            }
            state => state,
        }
    }
}

/// A key a provider refused (401/403): not used until `retry_at_ms`, when one request tries it
/// again; each repeat doubles the wait.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvalidKey {
    pub provider: String,
    pub key_id: String,
    pub since_ms: EpochMs,
    pub status: u16,
    pub retry_at_ms: EpochMs,
    /// Refusals in a row.
    pub strikes: u32,
}

/// `base` doubled for each strike after the first, capped.
pub fn backoff_ms(base_ms: u64, strikes: u32, cap_ms: u64) -> u64 {
    base_ms
        .saturating_mul(1u64 << strikes.saturating_sub(1).min(30))
        .min(cap_ms)
}

/// A key resting on one route (or on all of a provider's routes when `route_id` is `*`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyCooldown {
    pub provider: String,
    pub key_id: String,
    pub route_id: String,
    pub until_ms: EpochMs,
    pub reason: String,
    /// Hint-less 429s in a row: each one doubles the next cooldown.
    pub strikes: u32,
}
