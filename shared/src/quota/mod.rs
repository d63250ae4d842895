//! The quota ledger: reserve before an attempt, settle with the real usage after, release on a
//! refusal. Limits come from the catalog (per key across a provider, per key on a route); windows
//! are a sliding minute and the provider's own day.

pub mod window;

use crate::catalog::{Provider, Route};
use crate::config::Limits;
use crate::store::{ReservationAsk, Store, StoreError};
use crate::time::EpochMs;
use window::{Usage, blocked_until, day_window_start, headroom};

/// A reservation in flight: settle or release it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation(pub i64);

/// A reservation held by a request in flight. If the request is dropped before settling or
/// releasing it (the client went away), it is settled at its estimate: the provider may well have
/// served it, and a reservation left to expire would make the day look emptier than it is.
pub struct HeldReservation {
    ledger: Ledger,
    reservation: Option<Reservation>,
    estimate: u64,
}

impl HeldReservation {
    pub fn new(ledger: &Ledger, reservation: Option<Reservation>, estimate: u64) -> Self {
        Self {
            ledger: ledger.clone(),
            reservation,
            estimate,
        }
    }

    /// Takes the reservation out to settle or release it; the guard then does nothing.
    pub fn take(&mut self) -> Option<Reservation> {
        self.reservation.take()
    }
}

impl Drop for HeldReservation {
    fn drop(&mut self) {
        if let Some(reservation) = self.reservation.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (ledger, estimate) = (self.ledger.clone(), self.estimate);
            runtime.spawn(async move {
                if let Err(error) = ledger.settle(reservation, estimate).await {
                    tracing::warn!(%error, "settling an abandoned reservation failed");
                }
            });
        }
    }
}

/// Where a spent limit applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The key across all of the provider's routes.
    Key,
    /// The key on this route only.
    Route,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    Granted(Reservation),
    /// No room: the key (or key on this route) has room again at `until_ms`.
    Refused {
        until_ms: EpochMs,
        scope: Scope,
    },
    /// Room for smaller requests, not for this one: skip the key for this request only.
    TooLargeNow,
}

/// How long an unsettled reservation counts before it is presumed abandoned.
pub const RESERVATION_TTL_MS: EpochMs = 10 * 60_000;

/// The ledger over the shared store.
#[derive(Clone, Debug)]
pub struct Ledger {
    store: Store,
}

impl Ledger {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Whether a route on this provider has any limit to keep.
    pub fn limited(provider: &Provider, route: &Route) -> bool {
        provider.limits != Limits::default() || route.limits != Limits::default()
    }

    /// Reserves one request and `tokens` for `key_id` on `route`, in one atomic statement.
    pub async fn reserve(
        &self,
        provider: &Provider,
        route: &Route,
        key_id: &str,
        tokens: u64,
        now: EpochMs,
    ) -> Result<Grant, StoreError> {
        let day_start = day_window_start(now, provider.day_reset_minute);
        let ask = ReservationAsk {
            provider: &provider.name,
            key_id,
            route_id: &route.route_id,
            tokens,
            now,
            expires_ms: now + RESERVATION_TTL_MS,
            day_start,
            key_limits: provider.limits,
            route_limits: route.limits,
        };
        if let Some(id) = self.store.reserve(&ask).await? {
            return Ok(Grant::Granted(Reservation(id)));
        }
        // Refused: find which limit is spent, and until when. The key only rests when even a
        // request of no tokens would be refused; a large request alone does not bench it.
        let key_usage = self
            .store
            .usage(&provider.name, key_id, None, now, day_start)
            .await?;
        let route_usage = self
            .store
            .usage(
                &provider.name,
                key_id,
                Some(&route.route_id),
                now,
                day_start,
            )
            .await?;
        if let Some(until_ms) = blocked_until(&provider.limits, &key_usage, 0, now, day_start) {
            return Ok(Grant::Refused {
                until_ms,
                scope: Scope::Key,
            });
        }
        if let Some(until_ms) = blocked_until(&route.limits, &route_usage, 0, now, day_start) {
            return Ok(Grant::Refused {
                until_ms,
                scope: Scope::Route,
            });
        }
        let too_large = blocked_until(&provider.limits, &key_usage, tokens, now, day_start)
            .is_some()
            || blocked_until(&route.limits, &route_usage, tokens, now, day_start).is_some();
        if too_large {
            return Ok(Grant::TooLargeNow);
        }
        let hinted = self
            .store
            .provider_hint_blocks_until(&provider.name, key_id, &route.route_id, now)
            .await?;
        Ok(Grant::Refused {
            // A race with another gateway freed room in between: try again a moment later.
            until_ms: hinted.unwrap_or(now + 250),
            scope: Scope::Route,
        })
    }

    /// When the key next has room for a request of no tokens, if it has none now (and where).
    pub async fn room_at(
        &self,
        provider: &Provider,
        route: &Route,
        key_id: &str,
        now: EpochMs,
    ) -> Result<Option<(EpochMs, Scope)>, StoreError> {
        let day_start = day_window_start(now, provider.day_reset_minute);
        let key_usage = self
            .store
            .usage(&provider.name, key_id, None, now, day_start)
            .await?;
        if let Some(until) = blocked_until(&provider.limits, &key_usage, 0, now, day_start) {
            return Ok(Some((until, Scope::Key)));
        }
        let route_usage = self
            .store
            .usage(
                &provider.name,
                key_id,
                Some(&route.route_id),
                now,
                day_start,
            )
            .await?;
        Ok(
            blocked_until(&route.limits, &route_usage, 0, now, day_start)
                .map(|until| (until, Scope::Route)),
        )
    }

    pub async fn settle(&self, reservation: Reservation, tokens: u64) -> Result<(), StoreError> {
        self.store.settle(reservation.0, tokens).await
    }

    pub async fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        self.store.release(reservation.0).await
    }

    /// What is left of a key's limits on a route, 0.0 to 1.0 (for choosing among keys).
    pub async fn headroom(
        &self,
        provider: &Provider,
        route: &Route,
        key_id: &str,
        now: EpochMs,
    ) -> Result<f64, StoreError> {
        let day_start = day_window_start(now, provider.day_reset_minute);
        let key: Usage = self
            .store
            .usage(&provider.name, key_id, None, now, day_start)
            .await?;
        let on_route = self
            .store
            .usage(
                &provider.name,
                key_id,
                Some(&route.route_id),
                now,
                day_start,
            )
            .await?;
        Ok(headroom(&provider.limits, &key).min(headroom(&route.limits, &on_route)))
    }

    /// Forgets what no window counts any more.
    pub async fn prune(&self, now: EpochMs) -> Result<u64, StoreError> {
        self.store.prune_ledger(now).await
    }
}

#[cfg(test)]
mod tests {
    use super::window::{DAY_MS, MINUTE_MS};
    use super::*;
    use crate::catalog::{Origin, RouteSeed};
    use std::time::Duration;

    const MIDNIGHT: EpochMs = 1_798_761_600_000; // 2027-01-01T00:00:00Z

    fn provider(limits: Limits, day_reset_minute: u32) -> Provider {
        Provider {
            limits,
            day_reset_minute,
            ..Provider::keyless("p", "http://127.0.0.1:9/v1")
        }
    }

    fn route(model: &str, limits: Limits) -> Route {
        RouteSeed {
            provider: "p".into(),
            model: model.into(),
            display_name: None,
            rank: Some(1),
            score: None,
            aliases: Vec::new(),
            context_window: None,
            max_output: None,
            tags: Vec::new(),
            limits: Some(limits),
        }
        .into_route(Origin::Manual, true, 1)
    }

    async fn ledger(dir: &tempfile::TempDir) -> Ledger {
        Ledger::new(
            Store::open(&dir.path().join("q.db"), Duration::from_secs(5))
                .await
                .unwrap(),
        )
    }

    fn granted(grant: &Grant) -> bool {
        matches!(grant, Grant::Granted(_))
    }

    #[tokio::test]
    async fn reservations_stop_at_the_rpm_and_resume_as_the_minute_slides() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        let p = provider(
            Limits {
                rpm: Some(3),
                ..Limits::default()
            },
            0,
        );
        let r = route("m", Limits::default());
        for i in 0..3 {
            assert!(granted(
                &ledger
                    .reserve(&p, &r, "k", 10, MIDNIGHT + i * 1_000)
                    .await
                    .unwrap()
            ));
        }
        let refused = ledger
            .reserve(&p, &r, "k", 10, MIDNIGHT + 5_000)
            .await
            .unwrap();
        assert_eq!(
            refused,
            Grant::Refused {
                until_ms: MIDNIGHT + MINUTE_MS,
                scope: Scope::Key
            }
        );
        assert!(granted(
            &ledger
                .reserve(&p, &r, "other-key", 10, MIDNIGHT + 5_000)
                .await
                .unwrap()
        ));
        assert!(granted(
            &ledger
                .reserve(&p, &r, "k", 10, MIDNIGHT + MINUTE_MS + 1)
                .await
                .unwrap()
        ));
    }

    #[tokio::test]
    async fn the_sliding_minute_is_exact_to_the_millisecond_inside_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        let p = provider(
            Limits {
                rpm: Some(2),
                ..Limits::default()
            },
            0,
        );
        let r = route("m", Limits::default());
        // Two requests in the same second, 300 ms apart.
        for at in [MIDNIGHT + 1_200, MIDNIGHT + 1_500] {
            assert!(granted(&ledger.reserve(&p, &r, "k", 1, at).await.unwrap()));
        }
        // The first leaves the window at 61.200 s, the second at 61.500 s: not a millisecond early.
        assert!(!granted(
            &ledger
                .reserve(&p, &r, "k", 1, MIDNIGHT + 61_199)
                .await
                .unwrap()
        ));
        assert!(granted(
            &ledger
                .reserve(&p, &r, "k", 1, MIDNIGHT + 61_200)
                .await
                .unwrap()
        ));
        assert!(!granted(
            &ledger
                .reserve(&p, &r, "k", 1, MIDNIGHT + 61_400)
                .await
                .unwrap()
        ));
    }

    #[tokio::test]
    async fn running_totals_agree_with_the_ledger_after_settling_releasing_and_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        let p = provider(
            Limits {
                rpd: Some(1_000),
                tpd: Some(1_000_000),
                ..Limits::default()
            },
            0,
        );
        let (a, b) = (route("a", Limits::default()), route("b", Limits::default()));
        let mut reservations = Vec::new();
        for i in 0..40 {
            let r = if i % 2 == 0 { &a } else { &b };
            let Grant::Granted(id) = ledger
                .reserve(&p, r, "k", 100, MIDNIGHT + i * 997)
                .await
                .unwrap()
            else {
                panic!("granted")
            };
            reservations.push(id);
        }
        for (i, id) in reservations.iter().enumerate() {
            match i % 4 {
                0 => ledger.settle(*id, 7).await.unwrap(),
                1 => ledger.release(*id).await.unwrap(),
                _ => {} // left in flight
            }
        }
        let now = MIDNIGHT + 50_000;
        let day = window::day_window_start(now, 0);
        let usage = |route: Option<&'static str>| {
            let store = ledger.store.clone();
            async move { store.usage("p", "k", route, now, day).await.unwrap() }
        };
        // 10 settled at 7, 10 released, 20 in flight at 100; a and b share them evenly but for
        // the released ones (all on b).
        let key = usage(None).await;
        assert_eq!((key.day_requests, key.day_tokens), (30, 10 * 7 + 20 * 100));
        let on_a = usage(Some("p/a")).await;
        assert_eq!(
            (on_a.day_requests, on_a.day_tokens),
            (20, 10 * 7 + 10 * 100)
        );
        let on_b = usage(Some("p/b")).await;
        assert_eq!((on_b.day_requests, on_b.day_tokens), (10, 10 * 100));
        // Once the in-flight ones expire they stop counting, pruned or not.
        let later = MIDNIGHT + RESERVATION_TTL_MS + 60_000;
        let before_prune = ledger
            .store
            .usage("p", "k", None, later, day)
            .await
            .unwrap();
        ledger.prune(later).await.unwrap();
        let after_prune = ledger
            .store
            .usage("p", "k", None, later, day)
            .await
            .unwrap();
        assert_eq!(before_prune, after_prune);
        assert_eq!((after_prune.day_requests, after_prune.day_tokens), (10, 70));
    }

    #[tokio::test]
    async fn the_day_window_resets_at_the_providers_reset_time() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        // Resets at 08:00 UTC, 2 requests a day.
        let p = provider(
            Limits {
                rpd: Some(2),
                ..Limits::default()
            },
            480,
        );
        let r = route("m", Limits::default());
        let reset = MIDNIGHT + 8 * 60 * MINUTE_MS;
        assert!(granted(
            &ledger
                .reserve(&p, &r, "k", 1, reset - 3 * MINUTE_MS)
                .await
                .unwrap()
        ));
        assert!(granted(
            &ledger
                .reserve(&p, &r, "k", 1, reset - 2 * MINUTE_MS)
                .await
                .unwrap()
        ));
        let refused = ledger
            .reserve(&p, &r, "k", 1, reset - MINUTE_MS)
            .await
            .unwrap();
        assert_eq!(
            refused,
            Grant::Refused {
                until_ms: reset,
                scope: Scope::Key
            }
        );
        assert!(granted(
            &ledger.reserve(&p, &r, "k", 1, reset).await.unwrap()
        ));
        assert!(granted(
            &ledger.reserve(&p, &r, "k", 1, reset + 1).await.unwrap()
        ));
        let refused = ledger.reserve(&p, &r, "k", 1, reset + 2).await.unwrap();
        assert_eq!(
            refused,
            Grant::Refused {
                until_ms: reset + DAY_MS,
                scope: Scope::Key
            }
        );
    }

    #[tokio::test]
    async fn a_route_limit_spends_only_that_route() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        let p = provider(Limits::default(), 0);
        let (small, other) = (
            route(
                "small",
                Limits {
                    rpm: Some(1),
                    ..Limits::default()
                },
            ),
            route(
                "other",
                Limits {
                    rpm: Some(1),
                    ..Limits::default()
                },
            ),
        );
        assert!(granted(
            &ledger.reserve(&p, &small, "k", 1, MIDNIGHT).await.unwrap()
        ));
        assert_eq!(
            ledger
                .reserve(&p, &small, "k", 1, MIDNIGHT + 1)
                .await
                .unwrap(),
            Grant::Refused {
                until_ms: MIDNIGHT + MINUTE_MS,
                scope: Scope::Route
            }
        );
        assert!(granted(
            &ledger
                .reserve(&p, &other, "k", 1, MIDNIGHT + 1)
                .await
                .unwrap()
        ));
    }

    #[tokio::test]
    async fn settling_counts_real_tokens_releasing_frees_room_and_stale_reservations_expire() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        let p = provider(
            Limits {
                tpm: Some(1_000),
                ..Limits::default()
            },
            0,
        );
        let r = route("m", Limits::default());
        let Grant::Granted(first) = ledger.reserve(&p, &r, "k", 900, MIDNIGHT).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(
            ledger
                .reserve(&p, &r, "k", 200, MIDNIGHT + 1)
                .await
                .unwrap(),
            Grant::TooLargeNow,
            "a request too large for what is left does not bench the key"
        );
        ledger.settle(first, 300).await.unwrap();
        let Grant::Granted(second) = ledger
            .reserve(&p, &r, "k", 600, MIDNIGHT + 2)
            .await
            .unwrap()
        else {
            panic!()
        };
        assert!(!granted(
            &ledger
                .reserve(&p, &r, "k", 200, MIDNIGHT + 3)
                .await
                .unwrap()
        ));
        ledger.release(second).await.unwrap();
        assert!(granted(
            &ledger
                .reserve(&p, &r, "k", 600, MIDNIGHT + 4)
                .await
                .unwrap()
        ));
        // Unsettled reservations of a process that died stop counting once expired.
        let day = provider(
            Limits {
                rpd: Some(1),
                ..Limits::default()
            },
            0,
        );
        let r2 = route("m2", Limits::default());
        assert!(granted(
            &ledger.reserve(&day, &r2, "d", 1, MIDNIGHT).await.unwrap()
        ));
        assert!(!granted(
            &ledger
                .reserve(&day, &r2, "d", 1, MIDNIGHT + RESERVATION_TTL_MS - 1)
                .await
                .unwrap()
        ));
        assert!(granted(
            &ledger
                .reserve(&day, &r2, "d", 1, MIDNIGHT + RESERVATION_TTL_MS + 1)
                .await
                .unwrap()
        ));
    }

    #[tokio::test]
    async fn what_the_provider_says_is_left_limits_reservations_until_its_reset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("q.db"), Duration::from_secs(5))
            .await
            .unwrap();
        let ledger = Ledger::new(store.clone());
        // No configured limits, but the provider's headers said two requests are left for 30 s.
        let p = provider(
            Limits {
                rpd: Some(1_000_000),
                ..Limits::default()
            },
            0,
        );
        let r = route("m", Limits::default());
        let hint = crate::store::RateLimitHint {
            provider: "p".into(),
            key_id: "k".into(),
            scope: r.route_id.clone(),
            remaining_requests: Some(2),
            remaining_tokens: None,
            reset_at_ms: Some(MIDNIGHT + 30_000),
            observed_ms: MIDNIGHT,
        };
        store
            .record_rate_limit_hints(&[hint], MIDNIGHT)
            .await
            .unwrap();
        assert!(granted(
            &ledger.reserve(&p, &r, "k", 1, MIDNIGHT + 1).await.unwrap()
        ));
        assert!(granted(
            &ledger.reserve(&p, &r, "k", 1, MIDNIGHT + 2).await.unwrap()
        ));
        assert_eq!(
            ledger.reserve(&p, &r, "k", 1, MIDNIGHT + 3).await.unwrap(),
            Grant::Refused {
                until_ms: MIDNIGHT + 30_000,
                scope: Scope::Route
            }
        );
        assert!(granted(
            &ledger
                .reserve(&p, &r, "k", 1, MIDNIGHT + 30_000)
                .await
                .unwrap()
        ));
    }

    #[tokio::test]
    async fn a_reservation_dropped_unresolved_is_settled_and_keeps_counting_past_its_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = ledger(&dir).await;
        let p = provider(
            Limits {
                rpd: Some(1),
                ..Limits::default()
            },
            0,
        );
        let r = route("m", Limits::default());
        let Grant::Granted(reservation) = ledger.reserve(&p, &r, "k", 10, MIDNIGHT).await.unwrap()
        else {
            panic!()
        };
        drop(HeldReservation::new(&ledger, Some(reservation), 10));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let later = MIDNIGHT + RESERVATION_TTL_MS + 1;
        assert!(
            !granted(&ledger.reserve(&p, &r, "k", 1, later).await.unwrap()),
            "the abandoned request still counts"
        );
    }

    #[tokio::test]
    async fn two_ledgers_on_one_file_never_overspend_a_key_together() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (ledger(&dir).await, ledger(&dir).await);
        let p = provider(
            Limits {
                rpm: Some(30),
                ..Limits::default()
            },
            0,
        );
        let r = route("m", Limits::default());
        let mut tasks = Vec::new();
        for i in 0..100 {
            let (ledger, p, r) = (
                if i % 2 == 0 { a.clone() } else { b.clone() },
                p.clone(),
                r.clone(),
            );
            tasks.push(tokio::spawn(async move {
                ledger.reserve(&p, &r, "k", 1, MIDNIGHT + i).await.unwrap()
            }));
        }
        let mut grants = 0;
        for task in tasks {
            grants += granted(&task.await.unwrap()) as usize;
        }
        assert_eq!(grants, 30);
    }
}
