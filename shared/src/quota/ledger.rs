//! The ledger a process reserves against: leases held in memory and handed out to requests, the
//! stalled-store policy, and what the request path reads back (headroom, room, gauges) from the
//! view of each key. Asking for leases is in `refill.rs`, what follows in the store in `writes.rs`.

use super::grants::{Refusal, Scope, may_go_unreserved, refusal};
use super::leases::Slot;
use super::reservation::{Reservation, Source};
use super::seen::{Seen, Sighting};
use super::window::{Usage, blocked_until, day_window_start, headroom};
use super::writes::Write;
use crate::catalog::{Provider, Route};
use crate::config::{Limits, QuotaSettings};
use crate::metrics as m;
use crate::store::{LeaseKey, Store, StoreError};
use crate::time::EpochMs;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// What a reservation attempt gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Grant {
    Granted(Reservation),
    /// No room: the key (or key on this route) has room again at `until_ms`.
    Refused {
        until_ms: EpochMs,
        scope: Scope,
    },
    /// Room for smaller requests, not for this one: skip the key for this request only.
    TooLargeNow,
    /// The store did not answer in time and the key's limits are too small to go on without a
    /// lease: skip it for this request, try again from `retry_at_ms`.
    Stalled {
        retry_at_ms: EpochMs,
    },
}

/// How many reserve timeouts a request waits for a store that is busy but still writing.
const BUSY_PATIENCE: u32 = 8;
/// How long a stalled-store skip keeps the key out of this process's requests.
const STALLED_RETRY_MS: EpochMs = 1_000;

/// One (provider, key, route) of this process.
pub(super) struct SlotCell {
    pub(super) provider: String,
    pub(super) key_id: String,
    pub(super) route_id: String,
    state: Mutex<Slot>,
    /// Signalled whenever a lease, a raise, a refusal or a failure lands.
    pub(super) changed: watch::Sender<()>,
}

impl SlotCell {
    pub(super) fn lock(&self) -> MutexGuard<'_, Slot> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key its leases' writes name (PostgreSQL locks it for them).
    pub(super) fn lease_key(&self) -> LeaseKey {
        LeaseKey::new(&self.provider, &self.key_id)
    }
}

/// A key whose windows are kept in view for the gauges.
#[derive(Clone, Debug)]
pub(super) struct Watched {
    pub(super) provider: String,
    pub(super) key_id: String,
    pub(super) day_reset_minute: u32,
    pub(super) window_hours: Option<u32>,
}

type SlotMap = HashMap<String, HashMap<String, HashMap<String, Arc<SlotCell>>>>;

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) settings: QuotaSettings,
    /// This process, as the store knows its leases.
    pub(super) holder: String,
    pub(super) seq: AtomicI64,
    pub(super) slots: Mutex<SlotMap>,
    pub(super) seen: Seen,
    pub(super) watched: Mutex<Vec<Watched>>,
    /// Ledger writes in flight.
    pub(super) writes: TaskTracker,
    /// Requests holding a reservation guard.
    pub(super) requests: TaskTracker,
    /// Requests still running are asked to end (shutdown, once the grace is over).
    pub(super) draining: CancellationToken,
}

/// The ledger over the shared store (cheap to clone).
#[derive(Clone)]
pub struct Ledger {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("holder", &self.inner.holder)
            .finish_non_exhaustive()
    }
}

/// What one waiting turn of `reserve` decided.
enum Step {
    Done(Grant),
    Wait,
    Stalled,
}

impl Ledger {
    /// A ledger with no background pass: expiry and unwritten use are handled by [`Ledger::maintain`]
    /// (tests call it with their own time); [`Ledger::spawn_keeper`] runs it on a timer.
    pub fn new(store: Store, settings: QuotaSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                holder: uuid::Uuid::new_v4().simple().to_string(),
                seq: AtomicI64::new(1),
                slots: Mutex::new(HashMap::new()),
                seen: Seen::default(),
                watched: Mutex::new(Vec::new()),
                writes: TaskTracker::new(),
                requests: TaskTracker::new(),
                draining: CancellationToken::new(),
            }),
        }
    }

    /// Whether a route on this provider has any limit to keep.
    pub fn limited(provider: &Provider, route: &Route) -> bool {
        provider.limits != Limits::default() || route.limits != Limits::default()
    }

    /// This process's id in the ledger's rows.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// Keeps the windows of these providers' keys in view (the `/metrics` gauges read them).
    pub fn watch_keys<'a>(&self, providers: impl IntoIterator<Item = &'a Provider>) {
        let mut watched = lock(&self.inner.watched);
        for provider in providers {
            if provider.limits == Limits::default() {
                continue;
            }
            for key in &provider.keys {
                watched.push(Watched {
                    provider: provider.name.clone(),
                    key_id: key.id.clone(),
                    day_reset_minute: provider.day_reset_minute,
                    window_hours: provider.limits.window_hours,
                });
            }
        }
    }

    /// Reserves one request and `tokens` for `key_id` on `route`: from a lease this process holds
    /// (memory only), else from a new lease, waited for at most `quota.reserve_timeout_ms`.
    pub async fn reserve(
        &self,
        provider: &Provider,
        route: &Route,
        key_id: &str,
        tokens: u64,
        now: EpochMs,
    ) -> Result<Grant, StoreError> {
        let inner = &self.inner;
        let cell = inner.slot(&provider.name, key_id, &route.route_id);
        let timeout = Duration::from_millis(inner.settings.reserve_timeout_ms);
        let asked = tokio::time::Instant::now();
        let mut deadline = asked + timeout;
        let last_resort = tokio::time::Instant::now() + timeout * BUSY_PATIENCE;
        let day_start = day_window_start(now, provider.day_reset_minute);
        let (mut refusals_seen, failures_seen) = {
            let slot = cell.lock();
            (slot.refusals, slot.failures)
        };
        let mut retried = false;
        let mut waiting = Waiting::new(&cell);
        loop {
            let mut changed = cell.changed.subscribe();
            let mut writes = Vec::new();
            let step = {
                let mut slot = cell.lock();
                slot.key_limits = provider.limits;
                slot.route_limits = route.limits;
                slot.day_reset_minute = provider.day_reset_minute;
                writes.extend(
                    slot.expire(now)
                        .into_iter()
                        .map(|close| Write::Close(cell.clone(), close)),
                );
                if let Some(hinted) = slot.hint_blocks(now) {
                    // The provider's window may end before the ledger's sliding one: the later.
                    let ledger_room = self
                        .room_at(provider, route, key_id, now)
                        .map_or(hinted, |(at, _)| at);
                    Step::Done(Grant::Refused {
                        until_ms: hinted.max(ledger_room),
                        scope: Scope::Route,
                    })
                } else if let Some(id) = slot.hand_out(tokens, now) {
                    inner.after_hand_out(&cell, &mut slot, id, tokens, now, &mut writes);
                    Step::Done(Grant::Granted(Reservation {
                        ledger: inner.clone(),
                        cell: cell.clone(),
                        source: Source::Lease(id),
                        estimate: tokens,
                        resolved: false,
                    }))
                } else if slot.refusals > refusals_seen
                    && let Some(seen) = slot.refusal
                {
                    refusals_seen = slot.refusals;
                    let read = refusal(
                        &provider.limits,
                        &route.limits,
                        &seen.key,
                        &seen.route,
                        seen.hinted_until,
                        tokens,
                        seen.now,
                        seen.day_start,
                    );
                    match read {
                        Refusal::Spent { until_ms, scope } => {
                            Step::Done(Grant::Refused { until_ms, scope })
                        }
                        Refusal::TooLarge => Step::Done(Grant::TooLargeNow),
                        Refusal::Raced { hinted_until } if hinted_until.is_some() || retried => {
                            // A race with another gateway freed room in between: try again a moment later.
                            Step::Done(Grant::Refused {
                                until_ms: hinted_until.unwrap_or(now + 250),
                                scope: Scope::Route,
                            })
                        }
                        Refusal::Raced { .. } => {
                            retried = true;
                            if slot.refill.is_none() {
                                inner.start_refill(&cell, &mut slot, tokens, now, day_start);
                            }
                            Step::Wait
                        }
                    }
                } else if slot.failures > failures_seen {
                    Step::Stalled
                } else if slot.fits_after_commit(tokens, now) {
                    for lease in slot.leases.iter_mut() {
                        if let Some(target) = lease.next_commit() {
                            writes.push(Write::Commit(cell.clone(), lease.id, target));
                        }
                    }
                    Step::Wait
                } else if let Some((started, _)) = slot.refill {
                    if started.elapsed() >= timeout && inner.store_stuck(timeout) {
                        Step::Stalled
                    } else {
                        Step::Wait
                    }
                } else {
                    inner.start_refill(&cell, &mut slot, tokens, now, day_start);
                    Step::Wait
                }
            };
            inner.dispatch(writes);
            match step {
                Step::Done(grant) => return Ok(grant),
                Step::Stalled => return Ok(inner.stalled(&cell, tokens, now, asked, day_start)),
                Step::Wait => {
                    waiting.start();
                    if tokio::time::timeout_at(deadline, changed.changed())
                        .await
                        .is_err()
                    {
                        // A store that is busy but moving is waited for a while longer.
                        if inner.store_stuck(timeout) || tokio::time::Instant::now() >= last_resort
                        {
                            return Ok(inner.stalled(&cell, tokens, now, asked, day_start));
                        }
                        deadline = tokio::time::Instant::now() + timeout / 4;
                    }
                }
            }
        }
    }

    /// Settles a reservation with the real usage (memory now; the store follows off the path).
    pub fn settle(&self, reservation: Reservation, tokens: u64, now: EpochMs) {
        reservation.end(Some(tokens), now);
    }

    /// Gives a reservation back (the provider did not count the request).
    pub fn release(&self, reservation: Reservation, now: EpochMs) {
        reservation.end(None, now);
    }

    /// What the provider said is left on a key's route, until its reset: no more than that is
    /// handed out from memory until then.
    pub fn observe_hint(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        remaining_requests: Option<u64>,
        reset_at_ms: Option<EpochMs>,
    ) {
        let (Some(left), Some(until)) = (remaining_requests, reset_at_ms) else {
            return;
        };
        if let Some(cell) = self.inner.existing_slot(provider, key_id, route_id) {
            cell.lock().hint = Some((left, until));
        }
    }

    /// When the key next has room for a request of no tokens, if it has none now (and where), as
    /// last seen.
    pub fn room_at(
        &self,
        provider: &Provider,
        route: &Route,
        key_id: &str,
        now: EpochMs,
    ) -> Option<(EpochMs, Scope)> {
        let day_start = day_window_start(now, provider.day_reset_minute);
        let (key, on_route) =
            self.inner
                .sightings(&provider.name, key_id, &route.route_id, now, day_start);
        if let Some(until) =
            key.and_then(|k| blocked_until(&provider.limits, &k.usage, 0, now, day_start))
        {
            return Some((until, Scope::Key));
        }
        on_route
            .and_then(|r| blocked_until(&route.limits, &r.usage, 0, now, day_start))
            .map(|until| (until, Scope::Route))
    }

    /// What is left of a key's limits on a route, 0.0 to 1.0, as last seen (1.0 when never seen).
    pub fn headroom(&self, provider: &Provider, route: &Route, key_id: &str, now: EpochMs) -> f64 {
        let day_start = day_window_start(now, provider.day_reset_minute);
        let (key, on_route) =
            self.inner
                .sightings(&provider.name, key_id, &route.route_id, now, day_start);
        let key = key.map_or(1.0, |k| headroom(&provider.limits, &k.usage, now));
        let on_route = on_route.map_or(1.0, |r| headroom(&route.limits, &r.usage, now));
        key.min(on_route)
    }

    /// The share (0.0–1.0) of the key's daily request limit left on a route: the fewer of the
    /// key's across its provider and the key's on this route, as last seen; `None` when neither
    /// has a daily request limit.
    pub fn day_share_left(
        &self,
        provider: &Provider,
        route: &Route,
        key_id: &str,
        now: EpochMs,
    ) -> Option<f64> {
        let day_start = day_window_start(now, provider.day_reset_minute);
        let (key, on_route) =
            self.inner
                .sightings(&provider.name, key_id, &route.route_id, now, day_start);
        [
            (provider.limits.rpd, key.map(|k| k.usage.day_requests)),
            (route.limits.rpd, on_route.map(|r| r.usage.day_requests)),
        ]
        .into_iter()
        .filter_map(|(limit, used)| {
            let limit = limit.filter(|l| *l > 0)?;
            Some(limit.saturating_sub(used.unwrap_or(0)) as f64 / limit as f64)
        })
        .reduce(f64::min)
    }

    /// A key's use across its provider as last seen (the `/metrics` gauges).
    pub fn key_usage(&self, provider: &Provider, key_id: &str, now: EpochMs) -> Option<Usage> {
        let day_start = day_window_start(now, provider.day_reset_minute);
        self.inner
            .seen
            .get(&provider.name, key_id, "*", now, day_start)
            .map(|s| s.usage)
    }

    /// What this process's open leases on a key hold unspent: counted in the key's windows (by
    /// every process, the store's usage included) until they are settled or given back, never
    /// sent. The store's usage less this is the key's use as far as this process can know it.
    pub fn unspent(&self, provider: &str, key_id: &str, now: EpochMs) -> Usage {
        let cells: Vec<Arc<SlotCell>> = lock(&self.inner.slots)
            .get(provider)
            .and_then(|keys| keys.get(key_id))
            .map(|routes| routes.values().cloned().collect())
            .unwrap_or_default();
        let mut held = Usage::default();
        for cell in cells {
            for lease in &cell.lock().leases {
                let (unspent, dated_ms) = lease.unspent(now);
                held.day_requests += unspent.requests;
                held.day_tokens += unspent.tokens;
                held.month_requests += unspent.requests;
                held.month_tokens += unspent.tokens;
                held.window_requests += unspent.requests;
                held.window_tokens += unspent.tokens;
                if dated_ms > now - super::window::MINUTE_MS {
                    held.minute_requests += unspent.requests;
                    held.minute_tokens += unspent.tokens;
                }
            }
        }
        held
    }

    /// Settles leases other processes left behind and forgets what no window counts any more.
    pub async fn prune(&self, now: EpochMs) -> Result<u64, StoreError> {
        let pruned = self.inner.store.prune_ledger(now).await?;
        Ok(pruned.stranded_settled + pruned.rows_deleted)
    }

    /// A place among the requests shutdown waits for (see [`super::HeldReservation`]).
    pub(super) fn request_token(&self) -> TaskTrackerToken {
        self.inner.requests.token()
    }

    /// Resolves once shutdown asks requests still running to end (the grace is over).
    pub fn draining(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.inner.draining.clone().cancelled_owned()
    }
}

/// Counts a request among a slot's waiters while it waits.
struct Waiting<'a> {
    cell: &'a SlotCell,
    counted: bool,
}

impl<'a> Waiting<'a> {
    fn new(cell: &'a SlotCell) -> Self {
        Self {
            cell,
            counted: false,
        }
    }

    fn start(&mut self) {
        if !self.counted {
            self.counted = true;
            self.cell.lock().waiting += 1;
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.counted {
            let mut slot = self.cell.lock();
            slot.waiting = slot.waiting.saturating_sub(1);
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub(super) fn slot(&self, provider: &str, key_id: &str, route_id: &str) -> Arc<SlotCell> {
        let mut slots = lock(&self.slots);
        if let Some(cell) = slots
            .get(provider)
            .and_then(|keys| keys.get(key_id))
            .and_then(|routes| routes.get(route_id))
        {
            return cell.clone();
        }
        let cell = Arc::new(SlotCell {
            provider: provider.to_string(),
            key_id: key_id.to_string(),
            route_id: route_id.to_string(),
            state: Mutex::new(Slot::default()),
            changed: watch::Sender::new(()),
        });
        slots
            .entry(provider.to_string())
            .or_default()
            .entry(key_id.to_string())
            .or_default()
            .insert(route_id.to_string(), cell.clone());
        cell
    }

    pub(super) fn existing_slot(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
    ) -> Option<Arc<SlotCell>> {
        lock(&self.slots)
            .get(provider)
            .and_then(|keys| keys.get(key_id))
            .and_then(|routes| routes.get(route_id))
            .cloned()
    }

    pub(super) fn cells(&self) -> Vec<Arc<SlotCell>> {
        lock(&self.slots)
            .values()
            .flat_map(|keys| keys.values())
            .flat_map(|routes| routes.values())
            .cloned()
            .collect()
    }

    pub(super) fn next_seq(&self) -> i64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn sightings(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        now: EpochMs,
        day_start: EpochMs,
    ) -> (Option<Sighting>, Option<Sighting>) {
        (
            self.seen.get(provider, key_id, "*", now, day_start),
            self.seen.get(provider, key_id, route_id, now, day_start),
        )
    }

    /// Whether the store's write queue has been stuck on one batch for at least `timeout`.
    pub(super) fn store_stuck(&self, timeout: Duration) -> bool {
        self.store.ledger_stuck_for() >= timeout
    }

    pub(super) fn lease_ttl_ms(&self) -> EpochMs {
        self.settings.lease_ttl_ms.max(100) as EpochMs
    }

    /// The stalled-store policy (see the module doc): unreserved when the key had room for many
    /// requests like this one when last seen, else skipped.
    pub(super) fn stalled(
        self: &Arc<Self>,
        cell: &Arc<SlotCell>,
        tokens: u64,
        now: EpochMs,
        asked: tokio::time::Instant,
        day_start: EpochMs,
    ) -> Grant {
        // The skip runs from the end of the wait, not from the request's start.
        let waited_ms = asked.elapsed().as_millis() as EpochMs;
        let (key, route) =
            self.sightings(&cell.provider, &cell.key_id, &cell.route_id, now, day_start);
        let mut slot = cell.lock();
        // A scope with limits never seen cannot vouch for anything.
        let usage = |limits: &Limits, seen: Option<Sighting>| {
            if *limits == Limits::default() {
                Some(Usage::default())
            } else {
                seen.map(|s| s.usage)
            }
        };
        let allowed = match (
            usage(&slot.key_limits, key),
            usage(&slot.route_limits, route),
        ) {
            (Some(key_usage), Some(route_usage)) => {
                let sent = slot.unreserved.requests() + slot.unreserved_writing.requests();
                let sent_tokens = slot.unreserved.tokens() + slot.unreserved_writing.tokens();
                may_go_unreserved(
                    &[
                        (&slot.key_limits, &key_usage),
                        (&slot.route_limits, &route_usage),
                    ],
                    key.map_or(0, |s| s.other_holders),
                    sent,
                    sent_tokens,
                    tokens,
                )
            }
            _ => false,
        };
        let provider = cell.provider.clone();
        if allowed {
            slot.unreserved.in_flight_requests += 1;
            slot.unreserved.in_flight_tokens += tokens;
            drop(slot);
            metrics::counter!(m::QUOTA_UNRESERVED_TOTAL, "provider" => provider, "outcome" => "sent")
                .increment(1);
            Grant::Granted(Reservation {
                ledger: self.clone(),
                cell: cell.clone(),
                source: Source::Unreserved,
                estimate: tokens,
                resolved: false,
            })
        } else {
            drop(slot);
            metrics::counter!(m::QUOTA_UNRESERVED_TOTAL, "provider" => provider, "outcome" => "skipped")
                .increment(1);
            Grant::Stalled {
                retry_at_ms: now + waited_ms + STALLED_RETRY_MS,
            }
        }
    }
}
