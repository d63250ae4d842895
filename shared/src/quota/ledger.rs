//! The ledger a process reserves against: leases held in memory, handed out to requests, and the
//! writes that keep the store true — grants, committed marks, settles, corrections — sent off the
//! request's path through the store's group-commit queue, in order, and tracked until written.

use super::grants::{
    Block, Refusal, Scope, SizingInput, block_size, may_go_unreserved, refusal, tokens_limited,
};
use super::leases::{Followup, Lease, RefusalSeen, Slot};
use super::reservation::{Reservation, Source};
use super::seen::{Seen, Sighting};
use super::window::{DAY_MS, Usage, blocked_until, day_window_start, headroom};
use crate::catalog::{Provider, Route};
use crate::config::{Limits, QuotaSettings};
use crate::metrics as m;
use crate::store::{LeaseAsk, LeaseClose, Store, StoreError, UnreservedUse};
use crate::time::{EpochMs, now_ms};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
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

/// A lease smaller than this is never asked for ahead of need (a small limit stays one request at a time).
const PREFETCH_MIN_BLOCK: u64 = 4;
/// How often the background pass looks for expired leases and unwritten use.
const TICK: Duration = Duration::from_millis(200);
/// How many reserve timeouts a request waits for a store that is busy but still writing.
const BUSY_PATIENCE: u32 = 8;
/// How long a stalled-store skip keeps the key out of this process's requests.
const STALLED_RETRY_MS: EpochMs = 1_000;

/// One (provider, key, route) of this process.
pub(super) struct SlotCell {
    provider: String,
    key_id: String,
    route_id: String,
    state: Mutex<Slot>,
    /// Signalled whenever a lease, a raise, a refusal or a failure lands.
    changed: watch::Sender<()>,
}

impl SlotCell {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A key whose windows are kept in view for the gauges.
#[derive(Clone, Debug)]
struct Watched {
    provider: String,
    key_id: String,
    day_reset_minute: u32,
}

type SlotMap = HashMap<String, HashMap<String, HashMap<String, Arc<SlotCell>>>>;

pub(super) struct Inner {
    store: Store,
    settings: QuotaSettings,
    /// This process, as the store knows its leases.
    holder: String,
    seq: AtomicI64,
    slots: Mutex<SlotMap>,
    seen: Seen,
    watched: Mutex<Vec<Watched>>,
    /// Ledger writes in flight.
    writes: TaskTracker,
    /// Requests holding a reservation guard.
    requests: TaskTracker,
    /// Requests still running are asked to end (shutdown, once the grace is over).
    draining: CancellationToken,
}

/// A write that follows from a step in memory.
enum Write {
    Seal(Arc<SlotCell>, LeaseClose),
    Close(Arc<SlotCell>, LeaseClose),
    Commit(Arc<SlotCell>, i64, super::leases::Amount),
    Adjust(i64, i64, i64),
}

/// The ledger over the shared store (cheap to clone).
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
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
        let mut deadline = tokio::time::Instant::now() + timeout;
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
                if let Some(until_ms) = slot.hint_blocks(now) {
                    Step::Done(Grant::Refused {
                        until_ms,
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
                Step::Stalled => return Ok(inner.stalled(&cell, tokens, now, day_start)),
                Step::Wait => {
                    waiting.start();
                    if tokio::time::timeout_at(deadline, changed.changed())
                        .await
                        .is_err()
                    {
                        // A store that is busy but moving is waited for a while longer.
                        if inner.store_stuck(timeout) || tokio::time::Instant::now() >= last_resort
                        {
                            return Ok(inner.stalled(&cell, tokens, now, day_start));
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
        let key = key.map_or(1.0, |k| headroom(&provider.limits, &k.usage));
        let on_route = on_route.map_or(1.0, |r| headroom(&route.limits, &r.usage));
        key.min(on_route)
    }

    /// A key's use across its provider as last seen (the `/metrics` gauges).
    pub fn key_usage(&self, provider: &Provider, key_id: &str, now: EpochMs) -> Option<Usage> {
        let day_start = day_window_start(now, provider.day_reset_minute);
        self.inner
            .seen
            .get(&provider.name, key_id, "*", now, day_start)
            .map(|s| s.usage)
    }

    /// Settles leases other processes left behind and forgets what no window counts any more.
    pub async fn prune(&self, now: EpochMs) -> Result<u64, StoreError> {
        let pruned = self.inner.store.prune_ledger(now).await?;
        Ok(pruned.stranded_settled + pruned.rows_deleted)
    }

    /// One background pass at `now`: expired leases settled, unwritten use written, and — when
    /// `refresh` — every key in view re-read from the store.
    pub async fn maintain(&self, now: EpochMs, refresh: bool) {
        self.inner.maintain(now, refresh).await;
    }

    /// Runs [`Ledger::maintain`] on a timer until the ledger is shut down or dropped.
    pub fn spawn_keeper(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let stop = self.inner.draining.clone();
        let refresh_every = Duration::from_millis(self.inner.settings.refresh_ms.max(50));
        tokio::spawn(async move {
            let mut last_refresh: Option<Instant> = None;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                let refresh = last_refresh.is_none_or(|at| at.elapsed() >= refresh_every);
                if refresh {
                    last_refresh = Some(Instant::now());
                }
                inner.maintain(now_ms(), refresh).await;
            }
        })
    }

    /// A place among the requests shutdown waits for (see [`super::HeldReservation`]).
    pub(super) fn request_token(&self) -> TaskTrackerToken {
        self.inner.requests.token()
    }

    /// Resolves once shutdown asks requests still running to end (the grace is over).
    pub fn draining(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.inner.draining.clone().cancelled_owned()
    }

    /// Shutdown: asks requests still running to end, waits (at most `wait`) until they have, then
    /// settles every lease with its exact use (requests still in flight at their estimates), writes
    /// what was sent unreserved, and waits (at most `wait` again) for those writes. `false` when a
    /// wait ran out.
    pub async fn shutdown(&self, wait: Duration) -> bool {
        let inner = &self.inner;
        inner.draining.cancel();
        inner.requests.close();
        let requests_ended = tokio::time::timeout(wait, inner.requests.wait())
            .await
            .is_ok();
        let now = now_ms();
        let mut writes = Vec::new();
        for cell in inner.cells() {
            let mut slot = cell.lock();
            writes.extend(
                slot.close_all()
                    .into_iter()
                    .map(|close| Write::Close(cell.clone(), close)),
            );
            // Unreserved requests still in flight count at their estimates.
            let unreserved = &mut slot.unreserved;
            unreserved.ended_requests += std::mem::take(&mut unreserved.in_flight_requests);
            unreserved.ended_tokens += std::mem::take(&mut unreserved.in_flight_tokens);
            drop(slot);
            inner.write_unreserved(&cell, now);
        }
        inner.dispatch(writes);
        inner.writes.close();
        let written = tokio::time::timeout(wait, inner.writes.wait())
            .await
            .is_ok();
        if !requests_ended {
            tracing::warn!("shutdown: requests still running were settled at their estimates");
        }
        if !written {
            tracing::warn!("shutdown: the store did not take the ledger's last writes in time");
        }
        requests_ended && written
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn slot(&self, provider: &str, key_id: &str, route_id: &str) -> Arc<SlotCell> {
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

    fn existing_slot(&self, provider: &str, key_id: &str, route_id: &str) -> Option<Arc<SlotCell>> {
        lock(&self.slots)
            .get(provider)
            .and_then(|keys| keys.get(key_id))
            .and_then(|routes| routes.get(route_id))
            .cloned()
    }

    fn cells(&self) -> Vec<Arc<SlotCell>> {
        lock(&self.slots)
            .values()
            .flat_map(|keys| keys.values())
            .flat_map(|routes| routes.values())
            .cloned()
            .collect()
    }

    fn next_seq(&self) -> i64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn sightings(
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
    fn store_stuck(&self, timeout: Duration) -> bool {
        self.store.ledger_stuck_for() >= timeout
    }

    fn lease_ttl_ms(&self) -> EpochMs {
        self.settings.lease_ttl_ms.max(100) as EpochMs
    }

    /// After a hand-out: raise the lease's committed mark if it runs thin, and ask for the next
    /// lease ahead of need when this one is nearly spent or nearly over.
    fn after_hand_out(
        self: &Arc<Self>,
        cell: &Arc<SlotCell>,
        slot: &mut Slot,
        id: i64,
        tokens: u64,
        now: EpochMs,
        writes: &mut Vec<Write>,
    ) {
        let ttl = self.lease_ttl_ms();
        let Some(lease) = slot.leases.iter_mut().find(|l| l.id == id) else {
            return;
        };
        if let Some(seal) = lease.seal() {
            writes.push(Write::Seal(cell.clone(), seal));
        } else if let Some(target) = lease.next_commit() {
            writes.push(Write::Commit(cell.clone(), id, target));
        }
        let (block, expires_ms) = (lease.block.requests, lease.expires_ms);
        let nearly_spent = slot.left(now) * 4 <= block;
        let nearly_over = expires_ms - now <= ttl / 4;
        if block >= PREFETCH_MIN_BLOCK && slot.refill.is_none() && (nearly_spent || nearly_over) {
            let day_start = day_window_start(now, slot.day_reset_minute);
            self.start_refill(cell, slot, tokens, now, day_start);
        }
    }

    /// Asks the store for a lease in the background; whoever waits hears through `changed`.
    fn start_refill(
        self: &Arc<Self>,
        cell: &Arc<SlotCell>,
        slot: &mut Slot,
        min_tokens: u64,
        now: EpochMs,
        day_start: EpochMs,
    ) {
        let seq = slot.retry_seq.take().unwrap_or_else(|| self.next_seq());
        slot.refill = Some((Instant::now(), seq));
        let ttl = self.lease_ttl_ms();
        let demand = slot
            .rate
            .expected(ttl, now)
            .saturating_add(slot.waiting)
            .saturating_add(1)
            .max(slot.doubled_demand(now));
        let refill = Refill {
            seq,
            now,
            day_start,
            min_tokens,
            demand,
            tokens_per_request: slot.tokens_per_request.max(min_tokens),
            key_limits: slot.key_limits,
            route_limits: slot.route_limits,
        };
        let (inner, cell) = (self.clone(), cell.clone());
        self.writes
            .spawn(async move { inner.refill(&cell, refill).await });
    }

    async fn refill(&self, cell: &Arc<SlotCell>, refill: Refill) {
        let Refill {
            seq,
            now,
            day_start,
            min_tokens,
            ..
        } = refill;
        let (provider, key_id, route_id) = (&cell.provider, &cell.key_id, &cell.route_id);
        let refresh = self.settings.refresh_ms as EpochMs;
        let fresh = self.seen.fresh(provider, key_id, "*", now, refresh)
            && self.seen.fresh(provider, key_id, route_id, now, refresh);
        if !fresh && let Err(error) = self.read_standing(cell, now, day_start).await {
            tracing::debug!(%error, "reading a key's standing before a lease failed");
        }
        let (key, route) = self.sightings(provider, key_id, route_id, now, day_start);
        let block = block_size(&SizingInput {
            key_limits: &refill.key_limits,
            route_limits: &refill.route_limits,
            key: &key.map(|s| s.usage).unwrap_or_default(),
            route: &route.map(|s| s.usage).unwrap_or_default(),
            other_holders: key.map_or(0, |s| s.other_holders),
            demand_requests: refill.demand,
            tokens_per_request: refill.tokens_per_request,
            min_tokens,
            max_requests: self.settings.max_lease_requests.max(1),
        });
        let expires_ms = (now + self.lease_ttl_ms()).min(day_start + DAY_MS - 1);
        let result = self
            .store
            .grant_lease(self.ask(cell, &refill, block, now, expires_ms))
            .await;
        let outcome = match result {
            Ok(Some(grant)) => {
                for scope in ["*", route_id.as_str()] {
                    self.seen.add(
                        provider,
                        key_id,
                        scope,
                        grant.requests,
                        grant.tokens,
                        expires_ms,
                    );
                }
                let limited = tokens_limited(&refill.key_limits, &refill.route_limits);
                Ok(Some(Lease::new(grant, expires_ms, limited, min_tokens)))
            }
            Ok(None) => self.read_refusal(cell, now, day_start).await.map(|seen| {
                let mut slot = cell.lock();
                slot.refusal = Some(seen);
                slot.refusals += 1;
                None
            }),
            Err(error) => Err(error),
        };
        let mut slot = cell.lock();
        slot.refill = None;
        match outcome {
            // Shutdown has begun (and closed what it found): this one goes straight back.
            Ok(Some(lease)) if self.draining.is_cancelled() => {
                let close = lease.close();
                drop(slot);
                self.dispatch(vec![Write::Close(cell.clone(), close)]);
                slot = cell.lock();
            }
            Ok(Some(lease)) => slot.add(lease),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, provider = %provider, "taking a quota lease failed");
                slot.failures += 1;
                slot.retry_seq = Some(seq);
            }
        }
        drop(slot);
        cell.changed.send_replace(());
    }

    fn ask(
        &self,
        cell: &SlotCell,
        refill: &Refill,
        block: Block,
        now: EpochMs,
        expires_ms: EpochMs,
    ) -> LeaseAsk {
        LeaseAsk {
            provider: cell.provider.clone(),
            key_id: cell.key_id.clone(),
            route_id: cell.route_id.clone(),
            holder: self.holder.clone(),
            seq: refill.seq,
            now,
            expires_ms,
            day_start: refill.day_start,
            requests: block.requests,
            tokens: block.tokens,
            min_tokens: refill.min_tokens,
            committed_requests: block.committed_requests,
            committed_tokens: block.committed_tokens,
            key_limits: refill.key_limits,
            route_limits: refill.route_limits,
        }
    }

    /// Reads the key and the route from the store into view.
    async fn read_standing(
        &self,
        cell: &SlotCell,
        now: EpochMs,
        day_start: EpochMs,
    ) -> Result<(Usage, Usage), StoreError> {
        let standing = self
            .store
            .standing(
                &cell.provider,
                &cell.key_id,
                &cell.route_id,
                &self.holder,
                now,
                day_start,
            )
            .await?;
        let sighting = |usage| Sighting {
            usage,
            other_holders: standing.other_holders,
            seen_ms: now,
            day_start,
        };
        self.seen
            .record(&cell.provider, &cell.key_id, "*", sighting(standing.key));
        self.seen.record(
            &cell.provider,
            &cell.key_id,
            &cell.route_id,
            sighting(standing.route),
        );
        Ok((standing.key, standing.route))
    }

    async fn read_refusal(
        &self,
        cell: &SlotCell,
        now: EpochMs,
        day_start: EpochMs,
    ) -> Result<RefusalSeen, StoreError> {
        let (key, route) = self.read_standing(cell, now, day_start).await?;
        let hinted_until = self
            .store
            .provider_hint_blocks_until(&cell.provider, &cell.key_id, &cell.route_id, now)
            .await?;
        Ok(RefusalSeen {
            key,
            route,
            hinted_until,
            now,
            day_start,
        })
    }

    /// The stalled-store policy (see the module doc): unreserved when the key had room for many
    /// requests like this one when last seen, else skipped.
    fn stalled(
        self: &Arc<Self>,
        cell: &Arc<SlotCell>,
        tokens: u64,
        now: EpochMs,
        day_start: EpochMs,
    ) -> Grant {
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
                retry_at_ms: now + STALLED_RETRY_MS,
            }
        }
    }

    /// A reservation ended: `used` tokens, or `None` when given back.
    pub(super) fn resolve(
        &self,
        cell: &Arc<SlotCell>,
        source: Source,
        estimate: u64,
        used: Option<u64>,
        _now: EpochMs,
    ) {
        let mut slot = cell.lock();
        let followup = match source {
            Source::Lease(id) => slot.resolve(id, estimate, used),
            Source::Unreserved => {
                let unreserved = &mut slot.unreserved;
                unreserved.in_flight_requests = unreserved.in_flight_requests.saturating_sub(1);
                unreserved.in_flight_tokens = unreserved.in_flight_tokens.saturating_sub(estimate);
                if let Some(used) = used {
                    unreserved.ended_requests += 1;
                    unreserved.ended_tokens = unreserved.ended_tokens.saturating_add(used);
                }
                Followup::None
            }
        };
        drop(slot);
        match followup {
            Followup::None => {}
            Followup::Close(close) => self.dispatch(vec![Write::Close(cell.clone(), close)]),
            Followup::Adjust {
                id,
                requests,
                tokens,
            } => self.dispatch(vec![Write::Adjust(id, requests, tokens)]),
        }
    }

    /// Queues the writes now, in order, and tracks each until the store has it.
    fn dispatch(&self, writes: Vec<Write>) {
        for write in writes {
            match write {
                Write::Seal(cell, seal) => {
                    self.dated(&cell, seal.at_ms);
                    let written = self.store.seal_lease(seal);
                    self.writes.spawn(async move {
                        if let Err(error) = written.await {
                            tracing::warn!(%error, "sealing a spent quota lease failed");
                        }
                    });
                }
                Write::Close(cell, close) => {
                    if close.requests > 0 {
                        self.dated(&cell, close.at_ms);
                    }
                    let written = self.store.close_lease(close);
                    self.writes.spawn(async move {
                        if let Err(error) = written.await {
                            tracing::warn!(%error, "settling a quota lease failed; it counts its committed part until pruned");
                        }
                        drop(cell);
                    });
                }
                Write::Commit(cell, id, target) => {
                    let written = self.store.commit_lease(id, target.requests, target.tokens);
                    self.writes.spawn(async move {
                        let result = written.await;
                        if let Err(error) = &result {
                            tracing::warn!(%error, "raising a quota lease's committed mark failed");
                        }
                        let mut slot = cell.lock();
                        if let Some(lease) = slot.leases.iter_mut().find(|l| l.id == id) {
                            lease.committed_to(result.ok().map(|()| target));
                        }
                        drop(slot);
                        cell.changed.send_replace(());
                    });
                }
                Write::Adjust(id, requests, tokens) => {
                    let written = self.store.adjust_lease(id, requests, tokens);
                    self.writes.spawn(async move {
                        if let Err(error) = written.await {
                            tracing::warn!(%error, "correcting a settled quota lease failed");
                        }
                    });
                }
            }
        }
    }

    fn dated(&self, cell: &SlotCell, at_ms: EpochMs) {
        for scope in ["*", cell.route_id.as_str()] {
            self.seen.dated(&cell.provider, &cell.key_id, scope, at_ms);
        }
    }

    /// Writes the slot's ended unreserved use, once (one write at a time; a second try keeps the
    /// first's sequence number, so the store can never count it twice).
    fn write_unreserved(self: &Arc<Self>, cell: &Arc<SlotCell>, now: EpochMs) {
        let mut slot = cell.lock();
        if slot.unreserved_writing.ended_requests > 0 || slot.unreserved.ended_requests == 0 {
            return;
        }
        let writing = super::leases::Unreserved {
            ended_requests: std::mem::take(&mut slot.unreserved.ended_requests),
            ended_tokens: std::mem::take(&mut slot.unreserved.ended_tokens),
            ..Default::default()
        };
        slot.unreserved_writing = writing;
        drop(slot);
        let used = UnreservedUse {
            provider: cell.provider.clone(),
            key_id: cell.key_id.clone(),
            route_id: cell.route_id.clone(),
            holder: self.holder.clone(),
            seq: self.next_seq(),
            at_ms: now,
            requests: writing.ended_requests,
            tokens: writing.ended_tokens,
        };
        let (inner, cell) = (self.clone(), cell.clone());
        self.writes.spawn(async move {
            let mut tries = 0;
            loop {
                match inner.store.record_unreserved(used.clone()).await {
                    Ok(()) => break,
                    Err(error) if tries < 3 && !matches!(error, StoreError::Closed) => {
                        tries += 1;
                        tracing::warn!(%error, "writing unreserved quota use failed; trying again");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "unreserved quota use could not be written");
                        break;
                    }
                }
            }
            cell.lock().unreserved_writing = Default::default();
            // What ended meanwhile follows at once (tracked like this write, so shutdown waits).
            inner.write_unreserved(&cell, now_ms());
        });
    }

    async fn maintain(self: &Arc<Self>, now: EpochMs, refresh: bool) {
        let mut writes = Vec::new();
        let cells = self.cells();
        for cell in &cells {
            let mut slot = cell.lock();
            writes.extend(
                slot.expire(now)
                    .into_iter()
                    .map(|close| Write::Close(cell.clone(), close)),
            );
            drop(slot);
            self.write_unreserved(cell, now);
        }
        self.dispatch(writes);
        if !refresh {
            return;
        }
        for cell in &cells {
            let day_start = day_window_start(now, cell.lock().day_reset_minute);
            if let Err(error) = self.read_standing(cell, now, day_start).await {
                tracing::debug!(%error, "refreshing a key's standing failed");
            }
        }
        let watched = lock(&self.watched).clone();
        for key in watched {
            let day_start = day_window_start(now, key.day_reset_minute);
            let read = self
                .store
                .usage(&key.provider, &key.key_id, None, now, day_start)
                .await;
            let other_holders = self
                .seen
                .get(&key.provider, &key.key_id, "*", now, day_start)
                .map_or(0, |s| s.other_holders);
            match read {
                Ok(usage) => self.seen.record(
                    &key.provider,
                    &key.key_id,
                    "*",
                    Sighting {
                        usage,
                        other_holders,
                        seen_ms: now,
                        day_start,
                    },
                ),
                Err(error) => tracing::debug!(%error, "refreshing a key's use failed"),
            }
        }
    }
}

/// What a lease ask needs from the slot, taken under its lock.
struct Refill {
    seq: i64,
    now: EpochMs,
    day_start: EpochMs,
    min_tokens: u64,
    demand: u64,
    tokens_per_request: u64,
    key_limits: Limits,
    route_limits: Limits,
}
