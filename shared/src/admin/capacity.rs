//! Capacity you can see: per key and window, what is left and when it returns ("14/50 today,
//! back to 50 at 00:00 UTC"), the keys resting and until when, and the pool's forecast — the
//! requests left today across every key, and when the next refill comes. `adminctl quota show`
//! and `adminctl quota forecast` print these.

use crate::catalog::Provider;
use crate::config::Limits;
use crate::quota::window::{
    DAY_MS, MINUTE_MS, Usage, day_window_start, next_month_start, rolling_leaves_at,
};
use crate::store::{Store, StoreError};
use crate::time::EpochMs;
use serde::Serialize;
use std::collections::BTreeMap;

/// One limited window of one key, on its provider (`scope` `*`) or on one route.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowLeft {
    pub provider: String,
    pub key_id: String,
    /// `*` for the key across the provider, else a route id.
    pub scope: String,
    /// `minute` (sliding), `day` (the provider's), `month` (calendar, UTC) or `rolling` (the
    /// last `window_hours`).
    pub window: &'static str,
    /// The rolling window's length; `None` for the others.
    pub window_hours: Option<u32>,
    /// `requests` or `tokens`.
    pub counts: &'static str,
    pub used: u64,
    pub limit: u64,
    pub left: u64,
    /// When the window is whole again: the provider's day turn, the next month's first; for the
    /// sliding minute, a minute after its oldest use still in it; for a rolling window, when
    /// what it holds now has all left it (an upper bound: it frees as uses age out).
    pub full_at_ms: Option<EpochMs>,
}

/// A key resting (a cooldown from a refusal or a spent quota) and until when.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resting {
    pub provider: String,
    pub key_id: String,
    pub scope: String,
    pub until_ms: EpochMs,
    pub reason: String,
}

/// Every limited window of every key, and every key resting.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Capacity {
    pub windows: Vec<WindowLeft>,
    pub resting: Vec<Resting>,
    /// Keys (provider, key id) with no limit at all: nothing to run out of as far as we know.
    pub unlimited_keys: Vec<(String, String)>,
}

fn windows_of(
    limits: &Limits,
    usage: &Usage,
    day_turns_ms: EpochMs,
    now: EpochMs,
) -> Vec<(&'static str, &'static str, u64, u64, Option<EpochMs>)> {
    let minute_full = usage.minute_oldest_ms.map(|oldest| oldest + MINUTE_MS);
    let day_full = Some(day_turns_ms);
    let month_full = Some(next_month_start(now));
    let rolling_full = limits
        .window_hours
        .map(|hours| rolling_leaves_at(hours, now));
    let (window_requests, window_tokens) = usage.window_counts(limits, now);
    [
        (
            "minute",
            "requests",
            limits.rpm,
            usage.minute_requests,
            minute_full,
        ),
        ("day", "requests", limits.rpd, usage.day_requests, day_full),
        (
            "minute",
            "tokens",
            limits.tpm,
            usage.minute_tokens,
            minute_full,
        ),
        ("day", "tokens", limits.tpd, usage.day_tokens, day_full),
        (
            "month",
            "requests",
            limits.rpmonth,
            usage.month_requests,
            month_full,
        ),
        (
            "month",
            "tokens",
            limits.tpmonth,
            usage.month_tokens,
            month_full,
        ),
        (
            "rolling",
            "requests",
            limits.rpwindow,
            window_requests,
            rolling_full,
        ),
        (
            "rolling",
            "tokens",
            limits.tpwindow,
            window_tokens,
            rolling_full,
        ),
    ]
    .into_iter()
    .filter_map(|(window, counts, limit, used, full)| {
        let limit = limit?;
        // A window nothing has used is whole already.
        let full = full.filter(|at| used > 0 && *at > now);
        Some((window, counts, limit, used, full))
    })
    .collect()
}

/// What every key of `providers` has left, as the store says at `now`; route windows for the
/// routes in `routes` (provider, route id, the route's own limits).
pub async fn capacity(
    store: &Store,
    providers: &BTreeMap<String, Provider>,
    routes: &[(String, String, Limits)],
    now: EpochMs,
) -> Result<Capacity, StoreError> {
    let mut out = Capacity::default();
    for provider in providers.values().filter(|p| !p.keys.is_empty()) {
        let day_start = day_window_start(now, provider.day_reset_minute);
        let day_turns = day_start + DAY_MS;
        for key in &provider.keys {
            let before = out.windows.len();
            let mut scopes = vec![("*".to_string(), provider.limits)];
            scopes.extend(
                routes
                    .iter()
                    .filter(|(p, _, limits)| *p == provider.name && *limits != Limits::default())
                    .map(|(_, route_id, limits)| (route_id.clone(), *limits)),
            );
            for (scope, limits) in scopes {
                if limits == Limits::default() {
                    continue;
                }
                let route = (scope != "*").then_some(scope.as_str());
                let usage = store
                    .usage(
                        &provider.name,
                        &key.id,
                        route,
                        now,
                        day_start,
                        limits.window_hours,
                    )
                    .await?;
                for (window, counts, limit, used, full_at_ms) in
                    windows_of(&limits, &usage, day_turns, now)
                {
                    out.windows.push(WindowLeft {
                        provider: provider.name.clone(),
                        key_id: key.id.clone(),
                        scope: scope.clone(),
                        window,
                        window_hours: (window == "rolling")
                            .then_some(limits.window_hours)
                            .flatten(),
                        counts,
                        used,
                        limit,
                        left: limit.saturating_sub(used),
                        full_at_ms,
                    });
                }
            }
            if out.windows.len() == before {
                out.unlimited_keys
                    .push((provider.name.clone(), key.id.clone()));
            }
        }
    }
    let health = store.load_health(now).await?;
    out.resting = health
        .keys
        .into_iter()
        .filter(|k| k.until_ms > now)
        .map(|k| Resting {
            provider: k.provider,
            key_id: k.key_id,
            scope: k.route_id,
            until_ms: k.until_ms,
            reason: k.reason,
        })
        .collect();
    out.resting.sort_by_key(|r| r.until_ms);
    Ok(out)
}

/// One provider's part of the pool today.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderForecast {
    pub provider: String,
    pub keys: usize,
    /// Requests left today across its keys (each key's tightest daily request window: its
    /// provider-wide one, else the sum of its routes'); `None` when it has no daily request limit.
    pub requests_left_today: Option<u64>,
    /// When its day turns.
    pub day_turns_ms: EpochMs,
    /// The soonest a resting key of it is back, if one rests.
    pub soonest_back_ms: Option<EpochMs>,
}

/// The pool's requests left today, and when the next refill comes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forecast {
    pub requests_left_today: u64,
    /// Providers whose keys have no daily request limit (not in the total).
    pub unlimited_providers: Vec<String>,
    /// The soonest moment any part of the pool refills: a resting key back, or a used day
    /// turning.
    pub next_refill_ms: Option<EpochMs>,
    pub providers: Vec<ProviderForecast>,
}

/// The forecast from a capacity reading.
pub fn forecast(
    capacity: &Capacity,
    providers: &BTreeMap<String, Provider>,
    now: EpochMs,
) -> Forecast {
    let mut out = Forecast {
        requests_left_today: 0,
        unlimited_providers: Vec::new(),
        next_refill_ms: None,
        providers: Vec::new(),
    };
    for provider in providers.values().filter(|p| !p.keys.is_empty()) {
        let day_turns_ms = day_window_start(now, provider.day_reset_minute) + DAY_MS;
        // What a scope can still send today: the fewest its day, month and rolling windows allow.
        let left_on = |key_id: &str, provider_wide: bool| -> BTreeMap<&str, u64> {
            let mut scopes = BTreeMap::new();
            for w in capacity.windows.iter().filter(|w| {
                w.provider == provider.name
                    && w.key_id == key_id
                    && matches!(w.window, "day" | "month" | "rolling")
                    && w.counts == "requests"
                    && (w.scope == "*") == provider_wide
            }) {
                scopes
                    .entry(w.scope.as_str())
                    .and_modify(|left: &mut u64| *left = (*left).min(w.left))
                    .or_insert(w.left);
            }
            scopes
        };
        let mut left: Option<u64> = None;
        for key in &provider.keys {
            let key_left = match left_on(&key.id, true).into_values().next() {
                Some(wide) => Some(wide),
                None => {
                    let routes = left_on(&key.id, false);
                    (!routes.is_empty()).then(|| routes.values().sum())
                }
            };
            if let Some(n) = key_left {
                left = Some(left.unwrap_or(0) + n);
            }
        }
        let soonest_back_ms = capacity
            .resting
            .iter()
            .filter(|r| r.provider == provider.name)
            .map(|r| r.until_ms)
            .min();
        let used_today = capacity
            .windows
            .iter()
            .any(|w| w.provider == provider.name && w.window == "day" && w.used > 0);
        let refill = soonest_back_ms
            .into_iter()
            .chain(used_today.then_some(day_turns_ms))
            .min();
        out.next_refill_ms = match (out.next_refill_ms, refill) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match left {
            Some(n) => out.requests_left_today += n,
            None => out.unlimited_providers.push(provider.name.clone()),
        }
        out.providers.push(ProviderForecast {
            provider: provider.name.clone(),
            keys: provider.keys.len(),
            requests_left_today: left,
            day_turns_ms,
            soonest_back_ms,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ApiKey;
    use crate::config::Secret;

    const MIDNIGHT: EpochMs = 1_798_761_600_000; // 2027-01-01T00:00:00Z

    fn provider(name: &str, keys: &[&str], rpd: Option<u64>) -> Provider {
        Provider {
            keys: keys.iter().map(|k| ApiKey::new(Secret::new(*k))).collect(),
            keyless: false,
            limits: Limits {
                rpd,
                rpm: Some(30),
                ..Limits::default()
            },
            ..Provider::keyless(name, "http://127.0.0.1:9/v1")
        }
    }

    #[test]
    fn each_window_says_what_is_left_and_when_it_is_whole_again() {
        let now = MIDNIGHT + 3_600_000;
        let limits = Limits {
            rpm: Some(30),
            rpd: Some(50),
            ..Limits::default()
        };
        let usage = Usage {
            minute_requests: 3,
            minute_oldest_ms: Some(now - 20_000),
            day_requests: 14,
            ..Usage::default()
        };
        let windows = windows_of(&limits, &usage, MIDNIGHT + DAY_MS, now);
        assert_eq!(
            windows,
            vec![
                ("minute", "requests", 30, 3, Some(now + 40_000)),
                ("day", "requests", 50, 14, Some(MIDNIGHT + DAY_MS)),
            ],
            "14/50 today, back to 50 at 00:00 UTC"
        );
        let unused = windows_of(&limits, &Usage::default(), MIDNIGHT + DAY_MS, now);
        assert!(
            unused.iter().all(|w| w.4.is_none()),
            "an unused window is whole"
        );
    }

    #[test]
    fn a_monthly_window_says_what_is_left_this_month_and_returns_on_the_first() {
        let now = MIDNIGHT + 3_600_000;
        let limits = Limits {
            rpmonth: Some(1_000),
            ..Limits::default()
        };
        let usage = Usage {
            month_requests: 986,
            ..Usage::default()
        };
        assert_eq!(
            windows_of(&limits, &usage, MIDNIGHT + DAY_MS, now),
            vec![(
                "month",
                "requests",
                1_000,
                986,
                Some(MIDNIGHT + 31 * DAY_MS)
            )],
            "14/1000 this month, back on February 1st"
        );
    }

    #[test]
    fn a_rolling_window_says_what_is_left_in_it_and_when_what_it_holds_has_left() {
        let now = MIDNIGHT + 3 * 3_600_000 + 30_000;
        let limits = Limits {
            window_hours: Some(5),
            rpwindow: Some(40),
            tpwindow: Some(100_000),
            ..Limits::default()
        };
        let usage = Usage {
            window_requests: 12,
            window_tokens: 30_000,
            window_oldest_ms: Some(MIDNIGHT + 60_000),
            ..Usage::default()
        };
        let whole = MIDNIGHT + 8 * 3_600_000 + 60_000;
        assert_eq!(
            windows_of(&limits, &usage, MIDNIGHT + DAY_MS, now),
            vec![
                ("rolling", "requests", 40, 12, Some(whole)),
                ("rolling", "tokens", 100_000, 30_000, Some(whole)),
            ],
            "28/40 in the last 5 h, back to 40 by 08:01 UTC"
        );
    }

    #[test]
    fn the_pool_sums_each_key_s_day_and_names_the_next_refill() {
        let now = MIDNIGHT + 3_600_000;
        let groq = provider("groq", &["g1", "g2"], Some(50));
        let lab = Provider {
            limits: Limits::default(),
            ..provider("lab", &["l1"], None)
        };
        let providers: BTreeMap<String, Provider> =
            [("groq".to_string(), groq.clone()), ("lab".to_string(), lab)]
                .into_iter()
                .collect();
        let window = |key: usize, used: u64| WindowLeft {
            provider: "groq".into(),
            key_id: groq.keys[key].id.clone(),
            scope: "*".into(),
            window: "day",
            window_hours: None,
            counts: "requests",
            used,
            limit: 50,
            left: 50 - used,
            full_at_ms: (used > 0).then_some(MIDNIGHT + DAY_MS),
        };
        let capacity = Capacity {
            windows: vec![window(0, 14), window(1, 0)],
            resting: vec![Resting {
                provider: "groq".into(),
                key_id: groq.keys[0].id.clone(),
                scope: "groq/m".into(),
                until_ms: now + 30_000,
                reason: "minute_rate".into(),
            }],
            unlimited_keys: Vec::new(),
        };
        let pool = forecast(&capacity, &providers, now);
        assert_eq!(pool.requests_left_today, 36 + 50);
        assert_eq!(pool.unlimited_providers, vec!["lab".to_string()]);
        assert_eq!(
            pool.next_refill_ms,
            Some(now + 30_000),
            "the resting key first"
        );
        assert_eq!(pool.providers[0].day_turns_ms, MIDNIGHT + DAY_MS);
        // A month or a rolling window nearly spent bounds what a key can send today.
        let short = |window: &'static str, left: u64| WindowLeft {
            window,
            left,
            ..capacity.windows[1].clone()
        };
        let bounded = Capacity {
            windows: vec![
                capacity.windows[0].clone(),
                capacity.windows[1].clone(),
                short("month", 7),
                short("rolling", 9),
            ],
            ..capacity.clone()
        };
        assert_eq!(
            forecast(&bounded, &providers, now).requests_left_today,
            36 + 7
        );
    }
}
