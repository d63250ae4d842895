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
        // Refused: find which limit is spent, and until when.
        let key_usage = self
            .store
            .usage(&provider.name, key_id, None, now, day_start)
            .await?;
        if let Some(until_ms) = blocked_until(&provider.limits, &key_usage, tokens, now, day_start)
        {
            return Ok(Grant::Refused {
                until_ms,
                scope: Scope::Key,
            });
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
        if let Some(until_ms) = blocked_until(&route.limits, &route_usage, tokens, now, day_start) {
            return Ok(Grant::Refused {
                until_ms,
                scope: Scope::Route,
            });
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
