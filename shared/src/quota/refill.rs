//! Asking the store for leases: sized by the rule of `grants.rs` from what was last seen, in the
//! background, heard by whoever waits through the slot's `changed` signal.

use super::grants::{Block, SizingInput, block_size, tokens_limited};
use super::leases::{Lease, RefusalSeen, Slot};
use super::ledger::{Inner, SlotCell};
use super::seen::Sighting;
use super::window::{DAY_MS, Usage, day_window_start, next_month_start};
use super::writes::Write;
use crate::config::Limits;
use crate::store::{LeaseAsk, StoreError};
use crate::time::EpochMs;
use std::sync::Arc;
use std::time::Instant;

/// A lease smaller than this is never asked for ahead of need (a small limit stays one request at a time).
const PREFETCH_MIN_BLOCK: u64 = 4;

/// What a lease ask needs from the slot, taken under its lock.
pub(super) struct Refill {
    seq: i64,
    now: EpochMs,
    day_start: EpochMs,
    min_tokens: u64,
    demand: u64,
    tokens_per_request: u64,
    key_limits: Limits,
    route_limits: Limits,
}

impl Inner {
    /// After a hand-out: raise the lease's committed mark if it runs thin, and ask for the next
    /// lease ahead of need when this one is nearly spent or nearly over.
    pub(super) fn after_hand_out(
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
        let block = lease.block.requests;
        let nearly_spent = slot.left(now) * 4 <= block;
        // The slot's last lease, not the one handed from: hand-outs drain the oldest lease first,
        // so once the next has landed they still come from one in its last quarter, and asking
        // on each of them would take a lease per request, each counted whole until it expires.
        let last_expiry = slot
            .leases
            .iter()
            .map(|l| l.expires_ms)
            .max()
            .unwrap_or(now);
        let nearly_over = last_expiry - now <= ttl / 4;
        if block >= PREFETCH_MIN_BLOCK && slot.refill.is_none() && (nearly_spent || nearly_over) {
            let day_start = day_window_start(now, slot.day_reset_minute);
            self.start_refill(cell, slot, tokens, now, day_start);
        }
    }

    /// Asks the store for a lease in the background; whoever waits hears through `changed`.
    pub(super) fn start_refill(
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
        // A lease never reaches past the day's reset or the month's: it counts where it was used.
        let expires_ms = (now + self.lease_ttl_ms())
            .min(day_start + DAY_MS - 1)
            .min(next_month_start(now) - 1);
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
    pub(super) async fn read_standing(
        &self,
        cell: &SlotCell,
        now: EpochMs,
        day_start: EpochMs,
    ) -> Result<(Usage, Usage), StoreError> {
        let windows = {
            let slot = cell.lock();
            (slot.key_limits.window_hours, slot.route_limits.window_hours)
        };
        let standing = self
            .store
            .standing(
                &cell.provider,
                &cell.key_id,
                &cell.route_id,
                &self.holder,
                now,
                day_start,
                windows,
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
}
