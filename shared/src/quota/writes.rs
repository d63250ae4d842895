//! The writes that follow from steps in memory — seals, raises, settles, corrections, unreserved
//! use — queued to the store in the order they happen and tracked until written.

use super::leases::{Amount, Followup, Unreserved};
use super::ledger::{Inner, SlotCell};
use super::reservation::Source;
use crate::store::{LeaseClose, StoreError, UnreservedUse};
use crate::time::{EpochMs, now_ms};
use std::sync::Arc;
use std::time::Duration;

/// A write that follows from a step in memory.
pub(super) enum Write {
    Seal(Arc<SlotCell>, LeaseClose),
    Close(Arc<SlotCell>, LeaseClose),
    Commit(Arc<SlotCell>, i64, Amount),
    Adjust(Arc<SlotCell>, i64, i64, i64),
}

impl Inner {
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
            } => self.dispatch(vec![Write::Adjust(cell.clone(), id, requests, tokens)]),
        }
    }

    /// Queues the writes now, in order, and tracks each until the store has it.
    pub(super) fn dispatch(&self, writes: Vec<Write>) {
        for write in writes {
            match write {
                Write::Seal(cell, seal) => {
                    self.dated(&cell, seal.at_ms);
                    let written = self.store.seal_lease(&cell.lease_key(), seal);
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
                    let written = self.store.close_lease(&cell.lease_key(), close);
                    self.writes.spawn(async move {
                        if let Err(error) = written.await {
                            tracing::warn!(%error, "settling a quota lease failed; it counts its committed part until pruned");
                        }
                        drop(cell);
                    });
                }
                Write::Commit(cell, id, target) => {
                    let written = self.store.commit_lease(
                        &cell.lease_key(),
                        id,
                        target.requests,
                        target.tokens,
                    );
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
                Write::Adjust(cell, id, requests, tokens) => {
                    let written = self
                        .store
                        .adjust_lease(&cell.lease_key(), id, requests, tokens);
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
    pub(super) fn write_unreserved(self: &Arc<Self>, cell: &Arc<SlotCell>, now: EpochMs) {
        let mut slot = cell.lock();
        if slot.unreserved_writing.ended_requests > 0 || slot.unreserved.ended_requests == 0 {
            return;
        }
        let writing = Unreserved {
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
}
