//! One request's share of a lease (or of the unreserved allowance), and the guard a request in
//! flight holds. Ending one is an in-memory step; the ledger writes what follows off the path.

use super::ledger::{Inner, Ledger, SlotCell};
use crate::time::now_ms;
use std::sync::Arc;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// Where a reservation was taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Lease(i64),
    /// Sent while the store did not answer (see `quota` on a stalled store).
    Unreserved,
}

/// A request's reservation: settle or release it. One dropped unresolved is settled at its
/// estimate: the provider may well have served it.
pub struct Reservation {
    pub(super) ledger: Arc<Inner>,
    pub(super) cell: Arc<SlotCell>,
    pub(super) source: Source,
    pub(super) estimate: u64,
    pub(super) resolved: bool,
}

impl Reservation {
    /// The token estimate it was taken with.
    pub fn estimate(&self) -> u64 {
        self.estimate
    }

    /// Whether it was taken without a lease, the store not answering.
    pub fn unreserved(&self) -> bool {
        self.source == Source::Unreserved
    }

    pub(super) fn end(mut self, used: Option<u64>, now: crate::time::EpochMs) {
        self.resolved = true;
        self.ledger
            .resolve(&self.cell, self.source, self.estimate, used, now);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.resolved {
            self.resolved = true;
            self.ledger.resolve(
                &self.cell,
                self.source,
                self.estimate,
                Some(self.estimate),
                now_ms(),
            );
        }
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("source", &self.source)
            .field("estimate", &self.estimate)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Reservation {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
            && self.source == other.source
            && self.estimate == other.estimate
    }
}

impl Eq for Reservation {}

/// What a request in flight holds for one attempt: its reservation (if the route has limits),
/// and its place among the requests shutdown waits for. Dropped with the reservation still in
/// it (the client went away), the reservation is settled at its estimate.
pub struct HeldReservation {
    reservation: Option<Reservation>,
    _in_flight: TaskTrackerToken,
}

impl HeldReservation {
    pub fn new(ledger: &Ledger, reservation: Option<Reservation>) -> Self {
        Self {
            reservation,
            _in_flight: ledger.request_token(),
        }
    }

    /// Takes the reservation out to settle or release it; the guard stays until the request ends.
    pub fn take(&mut self) -> Option<Reservation> {
        self.reservation.take()
    }
}
