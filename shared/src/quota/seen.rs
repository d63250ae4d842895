//! What this process last saw of each key's windows, so the request path reads headroom, room and
//! gauges from memory: refreshed from the store in the background, and moved on by this process's
//! own grants in between.

use super::window::{Usage, month_start};
use crate::time::EpochMs;
use std::collections::HashMap;
use std::sync::Mutex;

/// One scope of one key, as last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub usage: Usage,
    /// Other processes holding a live lease on the key (on the key's `*` scope).
    pub other_holders: u64,
    pub seen_ms: EpochMs,
    /// The day window the usage belongs to.
    pub day_start: EpochMs,
}

/// provider → key → scope (`*` or a route id) → sighting.
type Map = HashMap<String, HashMap<String, HashMap<String, Sighting>>>;

#[derive(Debug, Default)]
pub struct Seen {
    map: Mutex<Map>,
}

impl Seen {
    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, provider: &str, key_id: &str, scope: &str, sighting: Sighting) {
        self.lock()
            .entry(provider.to_string())
            .or_default()
            .entry(key_id.to_string())
            .or_default()
            .insert(scope.to_string(), sighting);
    }

    /// This process just took `requests` and `tokens` on `scope`, dated `at_ms` (the store counts
    /// them at once).
    pub fn add(
        &self,
        provider: &str,
        key_id: &str,
        scope: &str,
        requests: u64,
        tokens: u64,
        at_ms: EpochMs,
    ) {
        let mut map = self.lock();
        if let Some(sighting) = map
            .get_mut(provider)
            .and_then(|keys| keys.get_mut(key_id))
            .and_then(|scopes| scopes.get_mut(scope))
        {
            let usage = &mut sighting.usage;
            usage.minute_requests = usage.minute_requests.saturating_add(requests);
            usage.minute_tokens = usage.minute_tokens.saturating_add(tokens);
            usage.day_requests = usage.day_requests.saturating_add(requests);
            usage.day_tokens = usage.day_tokens.saturating_add(tokens);
            usage.month_requests = usage.month_requests.saturating_add(requests);
            usage.month_tokens = usage.month_tokens.saturating_add(tokens);
            usage.window_requests = usage.window_requests.saturating_add(requests);
            usage.window_tokens = usage.window_tokens.saturating_add(tokens);
            usage.minute_oldest_ms.get_or_insert(at_ms);
            usage.window_oldest_ms.get_or_insert(at_ms);
        }
    }

    /// One of this process's rows on `scope` was re-dated to `at_ms` (sealed or settled): the
    /// minute's oldest row may be that one now.
    pub fn dated(&self, provider: &str, key_id: &str, scope: &str, at_ms: EpochMs) {
        let mut map = self.lock();
        if let Some(sighting) = map
            .get_mut(provider)
            .and_then(|keys| keys.get_mut(key_id))
            .and_then(|scopes| scopes.get_mut(scope))
        {
            let oldest = &mut sighting.usage.minute_oldest_ms;
            *oldest = Some(match *oldest {
                Some(current) if current > at_ms - 60_000 => current.min(at_ms),
                _ => at_ms,
            });
        }
    }

    /// The last sighting of a scope, with its day counts dropped once the day it belongs to is
    /// over, its month counts once the calendar month is, and its minute counts once a whole
    /// minute has passed since.
    pub fn get(
        &self,
        provider: &str,
        key_id: &str,
        scope: &str,
        now: EpochMs,
        day_start: EpochMs,
    ) -> Option<Sighting> {
        let map = self.lock();
        let mut sighting = *map.get(provider)?.get(key_id)?.get(scope)?;
        if sighting.day_start != day_start {
            sighting.usage.day_requests = 0;
            sighting.usage.day_tokens = 0;
        }
        if month_start(sighting.seen_ms) != month_start(now) {
            sighting.usage.month_requests = 0;
            sighting.usage.month_tokens = 0;
        }
        if now - sighting.seen_ms >= 60_000 {
            sighting.usage.minute_requests = 0;
            sighting.usage.minute_tokens = 0;
            sighting.usage.minute_oldest_ms = None;
        }
        Some(sighting)
    }

    /// Whether the scope was seen within `fresh_ms` of `now`.
    pub fn fresh(
        &self,
        provider: &str,
        key_id: &str,
        scope: &str,
        now: EpochMs,
        fresh_ms: EpochMs,
    ) -> bool {
        let map = self.lock();
        map.get(provider)
            .and_then(|keys| keys.get(key_id))
            .and_then(|scopes| scopes.get(scope))
            .is_some_and(|s| now - s.seen_ms < fresh_ms && s.seen_ms <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sighting_forgets_its_minute_after_a_minute_and_its_day_after_the_day() {
        let seen = Seen::default();
        let usage = Usage {
            minute_requests: 3,
            minute_tokens: 30,
            minute_oldest_ms: Some(900),
            day_requests: 10,
            day_tokens: 100,
            ..Usage::default()
        };
        seen.record(
            "p",
            "k",
            "*",
            Sighting {
                usage,
                other_holders: 1,
                seen_ms: 1_000,
                day_start: 0,
            },
        );
        seen.add("p", "k", "*", 2, 20, 1_500);
        let now = seen.get("p", "k", "*", 2_000, 0).unwrap();
        assert_eq!((now.usage.minute_requests, now.usage.day_requests), (5, 12));
        let later = seen.get("p", "k", "*", 61_000, 0).unwrap();
        assert_eq!(
            (later.usage.minute_requests, later.usage.day_requests),
            (0, 12)
        );
        let tomorrow = seen.get("p", "k", "*", 61_000, 86_400_000).unwrap();
        assert_eq!(tomorrow.usage.day_requests, 0);
        assert!(seen.get("p", "other", "*", 2_000, 0).is_none());
    }
}
