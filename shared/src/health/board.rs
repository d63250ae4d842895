//! The in-memory health board the hot path reads; every change it makes is returned for persisting.

use super::state::{HealthState, InvalidKey, KeyCooldown, RouteHealth, backoff_ms};
use crate::config::RoutingSettings;
use crate::time::EpochMs;
use std::collections::HashMap;
use std::sync::Mutex;

/// A change to persist (the gateway hands these to its store writer).
#[derive(Clone, Debug, PartialEq)]
pub enum HealthChange {
    Route(RouteHealth),
    Key(KeyCooldown),
    KeyInvalid(InvalidKey),
    /// A key marked invalid answered again.
    KeyValid {
        provider: String,
        key_id: String,
    },
}

/// The longest any cooldown lasts unless the settings say otherwise (`routing.max_cooldown_s`).
pub const DEFAULT_MAX_COOLDOWN_MS: u64 = 26 * 3_600_000;

/// The reason of a rest a host's own ledger decided (its view of the limits and its own leases).
pub const LEDGER_REST: &str = "quota_exhausted";

/// Failures as far as route health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteFailure {
    /// 5xx, connection errors, malformed answers.
    Error,
    /// No headers or no first token in time.
    Timeout,
    /// The provider says the model does not exist.
    NotFound,
}

/// Key cooldowns by provider, key and route: nested so the hot path looks them up by `&str`
/// without building a key.
type KeyCooldowns = HashMap<String, HashMap<String, HashMap<String, KeyCooldown>>>;

#[derive(Default)]
struct Board {
    routes: HashMap<String, RouteHealth>,
    keys: KeyCooldowns,
    invalid: HashMap<String, HashMap<String, InvalidKey>>,
}

impl Board {
    fn key_cooling_until(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        now: EpochMs,
    ) -> Option<EpochMs> {
        let per_route = self.keys.get(provider)?.get(key_id)?;
        [route_id, "*"]
            .iter()
            .filter_map(|r| per_route.get(*r))
            .map(|k| k.until_ms)
            .filter(|until| *until > now)
            .max()
    }

    fn key_invalid(&self, provider: &str, key_id: &str, now: EpochMs) -> bool {
        self.invalid
            .get(provider)
            .and_then(|keys| keys.get(key_id))
            .is_some_and(|mark| mark.retry_at_ms > now)
    }

    fn key_entry(&mut self, provider: &str, key_id: &str, route_id: &str) -> &mut KeyCooldown {
        self.keys
            .entry(provider.to_string())
            .or_default()
            .entry(key_id.to_string())
            .or_default()
            .entry(route_id.to_string())
            .or_insert_with(|| KeyCooldown {
                provider: provider.to_string(),
                key_id: key_id.to_string(),
                route_id: route_id.to_string(),
                until_ms: 0,
                reason: String::new(),
                strikes: 0,
            })
    }
}

/// What the planner needs of a route's health, copied out cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteGlance {
    pub state: HealthState,
    pub cooldown_until_ms: EpochMs,
    pub learned_context_window: Option<u64>,
}

/// The board held for one planning pass: one lock, no copies.
pub struct HealthView<'a> {
    board: std::sync::MutexGuard<'a, Board>,
}

impl HealthView<'_> {
    /// The route's state as of `now` (healthy when the board knows nothing of it).
    pub fn glance(&self, route_id: &str, now: EpochMs) -> RouteGlance {
        match self.board.routes.get(route_id) {
            Some(h) => RouteGlance {
                state: h.effective_state(now),
                cooldown_until_ms: h.cooldown_until_ms,
                learned_context_window: h.learned_context_window,
            },
            None => RouteGlance {
                state: HealthState::Healthy,
                cooldown_until_ms: 0,
                learned_context_window: None,
            },
        }
    }

    pub fn key_cooling_until(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        now: EpochMs,
    ) -> Option<EpochMs> {
        self.board
            .key_cooling_until(provider, key_id, route_id, now)
    }

    /// Whether the key is refused now (a mark whose retry time has come reads as usable).
    pub fn key_invalid(&self, provider: &str, key_id: &str, now: EpochMs) -> bool {
        self.board.key_invalid(provider, key_id, now)
    }
}

/// Route and key health shared by all requests of one gateway.
pub struct HealthBoard {
    board: Mutex<Board>,
    /// No cooldown lasts longer than this from when it is set.
    max_cooldown_ms: u64,
}

impl Default for HealthBoard {
    fn default() -> Self {
        Self {
            board: Mutex::default(),
            max_cooldown_ms: DEFAULT_MAX_COOLDOWN_MS,
        }
    }
}

impl HealthBoard {
    /// A board holding what the store remembered, with every cooldown capped at
    /// `max_cooldown_ms` from `now` (one written before the cap existed, or by an older version,
    /// does not bench a key for a year).
    pub fn from_records(
        routes: Vec<RouteHealth>,
        keys: Vec<KeyCooldown>,
        invalid: Vec<InvalidKey>,
        now: EpochMs,
        max_cooldown_ms: u64,
    ) -> Self {
        let cap = now.saturating_add(max_cooldown_ms as EpochMs);
        let mut board = Board {
            routes: routes
                .into_iter()
                .map(|mut r| {
                    r.cooldown_until_ms = r.cooldown_until_ms.min(cap);
                    (r.route_id.clone(), r)
                })
                .collect(),
            ..Board::default()
        };
        for mut key in keys {
            key.until_ms = key.until_ms.min(cap);
            let (provider, key_id, route_id) = (
                key.provider.clone(),
                key.key_id.clone(),
                key.route_id.clone(),
            );
            *board.key_entry(&provider, &key_id, &route_id) = key;
        }
        for mut mark in invalid {
            mark.retry_at_ms = mark.retry_at_ms.min(cap);
            board
                .invalid
                .entry(mark.provider.clone())
                .or_default()
                .insert(mark.key_id.clone(), mark);
        }
        Self {
            board: Mutex::new(board),
            max_cooldown_ms,
        }
    }

    /// The latest end a cooldown set at `now` may have.
    fn capped(&self, until_ms: EpochMs, now: EpochMs) -> EpochMs {
        until_ms.min(now.saturating_add(self.max_cooldown_ms as EpochMs))
    }

    /// Takes in what other processes persisted (PostgreSQL announces it as it commits): a key
    /// resting longer, a key marked invalid, a route cooling longer. Nothing here is shortened or
    /// cleared by it: an ending comes from this process's own answers, or as a health reset, which
    /// replaces the board.
    pub fn absorb(
        &self,
        routes: Vec<RouteHealth>,
        keys: Vec<KeyCooldown>,
        invalid: Vec<InvalidKey>,
        now: EpochMs,
    ) {
        let mut board = self.lock();
        for key in keys {
            let until_ms = self.capped(key.until_ms, now);
            // Another host's ledger said no for itself; this host may still hold a lease with
            // room in it, and its own ledger decides the rest (taking the rest in stranded it).
            if until_ms <= now || key.reason == LEDGER_REST {
                continue;
            }
            let entry = board.key_entry(&key.provider, &key.key_id, &key.route_id);
            if until_ms > entry.until_ms {
                entry.until_ms = until_ms;
                entry.reason = key.reason;
                entry.strikes = entry.strikes.max(key.strikes);
            }
        }
        for mut mark in invalid {
            mark.retry_at_ms = self.capped(mark.retry_at_ms, now);
            if mark.retry_at_ms <= now {
                continue;
            }
            let marks = board.invalid.entry(mark.provider.clone()).or_default();
            if marks
                .get(&mark.key_id)
                .is_none_or(|known| known.retry_at_ms < mark.retry_at_ms)
            {
                marks.insert(mark.key_id.clone(), mark);
            }
        }
        for route in routes {
            let until_ms = self.capped(route.cooldown_until_ms, now);
            if route.state != HealthState::Cooling || until_ms <= now {
                continue;
            }
            let health = board
                .routes
                .entry(route.route_id.clone())
                .or_insert_with(|| RouteHealth::new(&route.route_id));
            if until_ms > health.cooldown_until_ms {
                health.state = HealthState::Cooling;
                health.cooldown_until_ms = until_ms;
                health.last_error = route.last_error;
                health.last_error_ms = route.last_error_ms;
            }
        }
    }

    /// Replaces everything (after a health reset made by another process).
    pub fn replace(&self, other: HealthBoard) {
        let other = other.board.into_inner().unwrap_or_else(|e| e.into_inner());
        *self.lock() = other;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds the board for a planning pass.
    pub fn view(&self) -> HealthView<'_> {
        HealthView { board: self.lock() }
    }

    pub fn route(&self, route_id: &str) -> Option<RouteHealth> {
        self.lock().routes.get(route_id).cloned()
    }

    pub fn routes(&self) -> Vec<RouteHealth> {
        self.lock().routes.values().cloned().collect()
    }

    /// When a key is resting on a route: the end of its cooldown, if still in the future.
    pub fn key_cooling_until(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        now: EpochMs,
    ) -> Option<EpochMs> {
        self.lock()
            .key_cooling_until(provider, key_id, route_id, now)
    }

    pub fn key_invalid(&self, provider: &str, key_id: &str, now: EpochMs) -> bool {
        self.lock().key_invalid(provider, key_id, now)
    }

    /// Every key cooldown the board holds (ended ones included), for status pages and tests.
    pub fn key_cooldowns(&self) -> Vec<KeyCooldown> {
        self.lock()
            .keys
            .values()
            .flat_map(|keys| keys.values())
            .flat_map(|routes| routes.values().cloned())
            .collect()
    }

    /// The keys marked invalid (their retry times included).
    pub fn invalid_keys(&self) -> Vec<InvalidKey> {
        self.lock()
            .invalid
            .values()
            .flat_map(|keys| keys.values().cloned())
            .collect()
    }

    /// A success: counters back to zero, state healthy. Returns a change only when something changed.
    pub fn record_success(&self, route_id: &str, now: EpochMs) -> Option<HealthChange> {
        let mut board = self.lock();
        let health = board.routes.get_mut(route_id)?;
        health.last_success_ms = Some(now);
        let was_clean = health.state == HealthState::Healthy
            && health.consecutive_failures == 0
            && health.consecutive_timeouts == 0
            && health.consecutive_not_found == 0;
        if was_clean {
            return None;
        }
        health.state = HealthState::Healthy;
        health.cooldown_until_ms = 0;
        health.consecutive_failures = 0;
        health.consecutive_timeouts = 0;
        health.consecutive_not_found = 0;
        Some(HealthChange::Route(health.clone()))
    }

    /// A failure counted against the route; repeated ones change its state.
    pub fn record_failure(
        &self,
        route_id: &str,
        failure: RouteFailure,
        error: &str,
        now: EpochMs,
        settings: &RoutingSettings,
    ) -> HealthChange {
        let mut board = self.lock();
        let health = board
            .routes
            .entry(route_id.to_string())
            .or_insert_with(|| RouteHealth::new(route_id));
        health.last_error = Some(error.chars().take(300).collect());
        health.last_error_ms = Some(now);
        match failure {
            RouteFailure::Error => {
                health.consecutive_failures += 1;
                if health.consecutive_failures >= settings.outage_after_failures {
                    health.state = HealthState::Cooling;
                    health.cooldown_until_ms = now + settings.outage_cooldown_ms as EpochMs;
                }
            }
            RouteFailure::Timeout => {
                health.consecutive_timeouts += 1;
                if health.consecutive_timeouts >= settings.repeated_after {
                    health.state = HealthState::TooSlow;
                    health.cooldown_until_ms = now + settings.too_slow_ms as EpochMs;
                }
            }
            RouteFailure::NotFound => {
                health.consecutive_not_found += 1;
                if health.consecutive_not_found >= settings.repeated_after {
                    // Tried again after a backoff that doubles with every repeat.
                    let repeats = health.consecutive_not_found - settings.repeated_after + 1;
                    health.state = HealthState::PotentiallyOutdated;
                    health.cooldown_until_ms = now.saturating_add(backoff_ms(
                        settings.reprobe_after_ms,
                        repeats,
                        settings.max_cooldown_s.saturating_mul(1000),
                    ) as EpochMs);
                }
            }
        }
        HealthChange::Route(health.clone())
    }

    /// The route cools as a whole until `until_ms` (a route-wide limit).
    pub fn cool_route(
        &self,
        route_id: &str,
        until_ms: EpochMs,
        reason: &str,
        now: EpochMs,
    ) -> HealthChange {
        let mut board = self.lock();
        let health = board
            .routes
            .entry(route_id.to_string())
            .or_insert_with(|| RouteHealth::new(route_id));
        let until_ms = until_ms.min(now.saturating_add(self.max_cooldown_ms as EpochMs));
        health.state = HealthState::Cooling;
        health.cooldown_until_ms = health.cooldown_until_ms.max(until_ms);
        health.last_error = Some(reason.to_string());
        health.last_error_ms = Some(now);
        HealthChange::Route(health.clone())
    }

    /// A key rests on a route until the reset the provider gave (at most the cap from `now`).
    pub fn cool_key(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        until_ms: EpochMs,
        reason: &str,
        now: EpochMs,
    ) -> HealthChange {
        self.rest_key(
            provider,
            key_id,
            route_id,
            self.capped(until_ms, now),
            reason,
        )
    }

    /// A key rests until its own ledger has room again (`LEDGER_REST`): a time this process
    /// worked out from the configured limits and the calendar, not one an answer claimed, so it
    /// is not capped — a spent monthly quota rests the key until the first of the next month.
    /// Other hosts do not take it in ([`HealthBoard::absorb`]).
    pub fn rest_key_for_quota(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        until_ms: EpochMs,
    ) -> HealthChange {
        self.rest_key(provider, key_id, route_id, until_ms, LEDGER_REST)
    }

    fn rest_key(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        until_ms: EpochMs,
        reason: &str,
    ) -> HealthChange {
        let mut board = self.lock();
        let entry = board.key_entry(provider, key_id, route_id);
        // A later answer must never shorten a longer rest (a daily quota, an escalation).
        if until_ms > entry.until_ms {
            entry.until_ms = until_ms;
            entry.reason = reason.to_string();
        }
        HealthChange::Key(entry.clone())
    }

    /// A hint-less 429 that outlasted the in-request backoff: an escalating cooldown.
    pub fn escalate_key(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        now: EpochMs,
        settings: &RoutingSettings,
    ) -> HealthChange {
        let mut board = self.lock();
        let entry = board.key_entry(provider, key_id, route_id);
        // Strikes are about one episode: long after the last rest ended, start over.
        if entry.until_ms + (settings.max_cooldown_ms as EpochMs) < now {
            entry.strikes = 0;
        }
        entry.strikes = entry.strikes.saturating_add(1);
        let factor = 1u64 << (entry.strikes - 1).min(16);
        let cooldown = settings
            .base_cooldown_ms
            .saturating_mul(factor)
            .min(settings.max_cooldown_ms);
        entry.until_ms = now + cooldown as EpochMs;
        entry.reason = "rate_limited_without_hint".into();
        HealthChange::Key(entry.clone())
    }

    /// A key the provider refused (401/403) rests until it is seen working again, or until its
    /// retry time, when one request tries it (a lone gateway recovers a key that was refused by
    /// a provider's hiccup); each refusal in a row doubles the wait.
    pub fn mark_key_invalid(
        &self,
        provider: &str,
        key_id: &str,
        status: u16,
        now: EpochMs,
        settings: &RoutingSettings,
    ) -> HealthChange {
        let mut board = self.lock();
        let previous = board
            .invalid
            .get(provider)
            .and_then(|keys| keys.get(key_id));
        let strikes = previous.map_or(0, |mark| mark.strikes).saturating_add(1);
        let since_ms = previous.map_or(now, |mark| mark.since_ms);
        let wait = backoff_ms(
            settings.reprobe_after_ms,
            strikes,
            settings.max_cooldown_s.saturating_mul(1000),
        );
        let mark = InvalidKey {
            provider: provider.to_string(),
            key_id: key_id.to_string(),
            since_ms,
            status,
            retry_at_ms: self.capped(now.saturating_add(wait as EpochMs), now),
            strikes,
        };
        board
            .invalid
            .entry(provider.to_string())
            .or_default()
            .insert(key_id.to_string(), mark.clone());
        HealthChange::KeyInvalid(mark)
    }

    /// A key answered: a mark it had is lifted (`None` when there was none, the usual case).
    pub fn key_answered(&self, provider: &str, key_id: &str) -> Option<HealthChange> {
        let mut board = self.lock();
        let keys = board.invalid.get_mut(provider)?;
        keys.remove(key_id)?;
        Some(HealthChange::KeyValid {
            provider: provider.to_string(),
            key_id: key_id.to_string(),
        })
    }

    /// A structured context-length refusal teaches the route's real window (the caller has
    /// checked the number is plausible).
    pub fn learn_context_window(&self, route_id: &str, window: u64) -> HealthChange {
        let mut board = self.lock();
        let health = board
            .routes
            .entry(route_id.to_string())
            .or_insert_with(|| RouteHealth::new(route_id));
        health.learned_context_window = Some(
            health
                .learned_context_window
                .map_or(window, |w| w.min(window)),
        );
        HealthChange::Route(health.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, Settings};

    fn routing() -> RoutingSettings {
        Settings::load(&ConfigSource::default()).unwrap().routing
    }

    #[test]
    fn repeated_errors_cool_a_route_which_comes_back_half_open_after_the_cooldown() {
        let board = HealthBoard::default();
        let settings = routing();
        for _ in 0..settings.outage_after_failures {
            board.record_failure("p/m", RouteFailure::Error, "503", 1_000, &settings);
        }
        let health = board.route("p/m").unwrap();
        assert_eq!(health.effective_state(1_001), HealthState::Cooling);
        let after = 1_000 + settings.outage_cooldown_ms as EpochMs;
        assert_eq!(health.effective_state(after), HealthState::Healthy);
        assert!(board.record_success("p/m", after).is_some());
        assert_eq!(board.route("p/m").unwrap().state, HealthState::Healthy);
        assert!(
            board.record_success("p/m", after + 1).is_none(),
            "no write when nothing changed"
        );
    }

    #[test]
    fn hintless_429s_escalate_the_key_cooldown_up_to_the_cap() {
        let board = HealthBoard::default();
        let settings = routing();
        let mut last = 0;
        for _ in 0..20 {
            if let HealthChange::Key(k) = board.escalate_key("p", "k", "p/m", 0, &settings) {
                assert!(k.until_ms >= last);
                last = k.until_ms;
            }
        }
        assert_eq!(last, settings.max_cooldown_ms as EpochMs);
        assert_eq!(board.key_cooling_until("p", "k", "p/m", 0), Some(last));
        assert_eq!(board.key_cooling_until("p", "k", "p/other", 0), None);
    }

    #[test]
    fn a_shorter_cooldown_never_replaces_a_longer_one_and_old_strikes_are_forgotten() {
        let board = HealthBoard::default();
        let settings = routing();
        board.cool_key("p", "k", "*", 86_400_000, "daily_quota", 0);
        board.cool_key("p", "k", "*", 2_000, "quota_headers_zero", 0);
        assert_eq!(board.key_cooling_until("p", "k", "r", 0), Some(86_400_000));
        for _ in 0..5 {
            board.escalate_key("p", "k", "r", 0, &settings);
        }
        let much_later = 100 * settings.max_cooldown_ms as EpochMs;
        if let HealthChange::Key(k) = board.escalate_key("p", "k", "r", much_later, &settings) {
            assert_eq!(k.strikes, 1);
            assert_eq!(
                k.until_ms,
                much_later + settings.base_cooldown_ms as EpochMs
            );
        }
    }

    #[test]
    fn repeated_not_found_marks_a_route_outdated_until_a_reprobe_that_backs_off() {
        let board = HealthBoard::default();
        let settings = routing();
        for _ in 0..settings.repeated_after {
            board.record_failure("p/m", RouteFailure::NotFound, "404", 0, &settings);
        }
        let reprobe = settings.reprobe_after_ms as EpochMs;
        let health = board.route("p/m").unwrap();
        assert_eq!(
            health.effective_state(reprobe - 1),
            HealthState::PotentiallyOutdated
        );
        assert_eq!(
            health.effective_state(reprobe),
            HealthState::Healthy,
            "re-probed"
        );
        // The re-probe finds it gone again: twice as long this time.
        board.record_failure("p/m", RouteFailure::NotFound, "404", reprobe, &settings);
        let health = board.route("p/m").unwrap();
        assert_eq!(health.cooldown_until_ms, reprobe + 2 * reprobe);
        assert!(board.record_success("p/m", 4 * reprobe).is_some());
        assert_eq!(board.route("p/m").unwrap().state, HealthState::Healthy);
    }

    #[test]
    fn an_invalid_key_is_retried_after_a_backoff_and_cleared_when_it_answers() {
        let board = HealthBoard::default();
        let settings = routing();
        let reprobe = settings.reprobe_after_ms as EpochMs;
        board.mark_key_invalid("p", "k", 401, 0, &settings);
        assert!(board.key_invalid("p", "k", reprobe - 1));
        assert!(!board.key_invalid("p", "k", reprobe), "tried again");
        board.mark_key_invalid("p", "k", 401, reprobe, &settings);
        assert!(
            board.key_invalid("p", "k", 3 * reprobe - 1),
            "waits twice as long"
        );
        assert!(board.key_answered("p", "k").is_some());
        assert!(!board.key_invalid("p", "k", 0));
        assert!(board.key_answered("p", "k").is_none(), "nothing to clear");
    }

    #[test]
    fn no_cooldown_outlasts_the_cap_even_one_loaded_from_the_store() {
        let board = HealthBoard::default();
        let year = 366 * 86_400_000;
        let HealthChange::Key(k) = board.cool_key("p", "k", "*", year, "rate_limited", 1_000)
        else {
            panic!("a key change")
        };
        assert_eq!(k.until_ms, 1_000 + DEFAULT_MAX_COOLDOWN_MS as EpochMs);
        let loaded = HealthBoard::from_records(
            Vec::new(),
            vec![KeyCooldown {
                until_ms: year,
                ..k
            }],
            Vec::new(),
            5_000,
            60_000,
        );
        assert_eq!(loaded.key_cooling_until("p", "k", "r", 5_000), Some(65_000));
    }

    #[test]
    fn another_hosts_ledger_refusal_is_not_taken_in_for_our_lease_may_have_room() {
        let board = HealthBoard::default();
        let theirs = KeyCooldown {
            provider: "p".into(),
            key_id: "k".into(),
            route_id: "*".into(),
            until_ms: 60_000,
            reason: LEDGER_REST.into(),
            strikes: 0,
        };
        board.absorb(Vec::new(), vec![theirs], Vec::new(), 2_000);
        assert_eq!(board.key_cooling_until("p", "k", "p/m", 2_000), None);
    }

    #[test]
    fn another_hosts_longer_rest_is_taken_in_and_a_shorter_one_never_shortens_ours() {
        let board = HealthBoard::default();
        board.cool_key("p", "k", "p/m", 50_000, "429", 1_000);
        let theirs = |until_ms| KeyCooldown {
            provider: "p".into(),
            key_id: "k".into(),
            route_id: "p/m".into(),
            until_ms,
            reason: "theirs".into(),
            strikes: 2,
        };
        board.absorb(Vec::new(), vec![theirs(20_000)], Vec::new(), 2_000);
        assert_eq!(
            board.key_cooling_until("p", "k", "p/m", 2_000),
            Some(50_000)
        );
        board.absorb(Vec::new(), vec![theirs(90_000)], Vec::new(), 2_000);
        assert_eq!(
            board.key_cooling_until("p", "k", "p/m", 2_000),
            Some(90_000)
        );

        let mut cooling = RouteHealth::new("p/other");
        cooling.state = HealthState::Cooling;
        cooling.cooldown_until_ms = 60_000;
        let mut ended = RouteHealth::new("p/ended");
        ended.state = HealthState::Cooling;
        ended.cooldown_until_ms = 1_500;
        let invalid = InvalidKey {
            provider: "p".into(),
            key_id: "bad".into(),
            since_ms: 1_000,
            status: 401,
            retry_at_ms: 70_000,
            strikes: 1,
        };
        board.absorb(vec![cooling, ended], Vec::new(), vec![invalid], 2_000);
        assert_eq!(board.route("p/other").unwrap().cooldown_until_ms, 60_000);
        assert!(
            board.route("p/ended").is_none(),
            "an ended rest is not taken in"
        );
        assert!(board.key_invalid("p", "bad", 2_000));
    }
}
