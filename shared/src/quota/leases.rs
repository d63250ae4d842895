//! Leases in memory: what one process holds of a (provider, key, route) and hands out to its
//! requests. Plain bookkeeping with time as a parameter; the store is written by `ledger.rs` from
//! what these functions return.

use super::grants::{commit_step, committed_tokens};
use super::window::Usage;
use crate::config::Limits;
use crate::store::{LeaseClose, LeaseGrant};
use crate::time::EpochMs;
use std::collections::HashMap;

/// Requests and tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    pub requests: u64,
    pub tokens: u64,
}

/// One lease this process holds.
#[derive(Clone, Debug)]
pub struct Lease {
    pub id: i64,
    pub expires_ms: EpochMs,
    /// What the store counts while the lease is live.
    pub block: Amount,
    /// What the store counts once it expires unsettled: written, so hand-outs may reach it.
    pub committed: Amount,
    /// A raise of the committed mark asked for and not yet written.
    pub committing: Option<Amount>,
    /// Requests handed out (those given back taken off) and their tokens: estimates while in
    /// flight, the real use once settled.
    pub handed: Amount,
    pub in_flight: u64,
    /// The last hand-out: the lease is dated there once settled.
    pub last_handout_ms: EpochMs,
    /// Whether token limits apply (else tokens are counted, never refused).
    pub tokens_limited: bool,
    /// The smallest token estimate the lease was asked for.
    pub min_tokens: u64,
    /// Dated at its last hand-out in the store: it hands out no more.
    pub sealed: bool,
}

/// Whether a request fits a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    Yes,
    /// Within the block, beyond what is committed so far: wait for the raise.
    AfterCommit,
    No,
}

impl Lease {
    pub fn new(
        grant: LeaseGrant,
        expires_ms: EpochMs,
        tokens_limited: bool,
        min_tokens: u64,
    ) -> Self {
        Self {
            id: grant.id,
            expires_ms,
            block: Amount {
                requests: grant.requests,
                tokens: grant.tokens,
            },
            committed: Amount {
                requests: grant.committed_requests,
                tokens: grant.committed_tokens,
            },
            committing: None,
            handed: Amount::default(),
            in_flight: 0,
            last_handout_ms: 0,
            tokens_limited,
            min_tokens,
            sealed: false,
        }
    }

    /// What the store counts of this lease beyond what it handed out (its whole block while live,
    /// its committed mark once expired unsettled), and the time its row is dated at.
    pub fn unspent(&self, now: EpochMs) -> (Amount, EpochMs) {
        let counted = if self.live(now) {
            self.block
        } else {
            self.committed
        };
        let dated = if self.sealed {
            self.last_handout_ms
        } else {
            self.expires_ms
        };
        let unspent = Amount {
            requests: counted.requests.saturating_sub(self.handed.requests),
            tokens: counted.tokens.saturating_sub(self.handed.tokens),
        };
        (unspent, dated)
    }

    pub fn live(&self, now: EpochMs) -> bool {
        now < self.expires_ms
    }

    pub fn fits(&self, tokens: u64, now: EpochMs) -> Fit {
        let within = |limit: Amount| {
            self.handed.requests < limit.requests
                && (!self.tokens_limited
                    || self.handed.tokens.saturating_add(tokens) <= limit.tokens)
        };
        if self.sealed || !self.live(now) || !within(self.block) {
            Fit::No
        } else if within(self.committed) {
            Fit::Yes
        } else {
            Fit::AfterCommit
        }
    }

    pub fn hand_out(&mut self, tokens: u64, now: EpochMs) {
        self.handed.requests += 1;
        self.handed.tokens = self.handed.tokens.saturating_add(tokens);
        self.in_flight += 1;
        self.last_handout_ms = self.last_handout_ms.max(now);
    }

    /// The committed mark to ask for when fewer than two steps are left ahead of the hand-outs (and
    /// no raise is already on its way); it is then recorded as asked.
    pub fn next_commit(&mut self) -> Option<Amount> {
        if self.committing.is_some() || self.committed.requests >= self.block.requests {
            return None;
        }
        let step = commit_step(self.block.requests);
        let thin_requests = self.committed.requests < self.handed.requests + 2 * step;
        let thin_tokens = self.tokens_limited
            && self.committed.tokens
                < self.handed.tokens
                    + committed_tokens(
                        2 * step,
                        self.block.requests,
                        self.block.tokens,
                        self.min_tokens,
                    );
        if !(thin_requests || thin_tokens) {
            return None;
        }
        let requests = (self.handed.requests + 3 * step).min(self.block.requests);
        let tokens = committed_tokens(
            requests,
            self.block.requests,
            self.block.tokens,
            self.min_tokens,
        )
        .max(self.handed.tokens.saturating_add(self.min_tokens))
        .min(self.block.tokens);
        let target = Amount { requests, tokens };
        self.committing = Some(target);
        Some(target)
    }

    /// A raise was written (or failed: `None`, to be asked again).
    pub fn committed_to(&mut self, written: Option<Amount>) {
        if let Some(written) = written {
            self.committed.requests = self.committed.requests.max(written.requests);
            self.committed.tokens = self.committed.tokens.max(written.tokens);
        }
        self.committing = None;
    }

    pub fn settle(&mut self, estimate: u64, used: u64) {
        self.handed.tokens = self
            .handed
            .tokens
            .saturating_sub(estimate)
            .saturating_add(used);
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The provider did not count the request: its share goes back to the lease.
    pub fn release(&mut self, estimate: u64) {
        self.handed.requests = self.handed.requests.saturating_sub(1);
        self.handed.tokens = self.handed.tokens.saturating_sub(estimate);
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Nothing more is handed out from it: every request of the block is out.
    pub fn spent(&self) -> bool {
        self.sealed
            || self.handed.requests >= self.block.requests
            || (self.tokens_limited
                && self.handed.tokens.saturating_add(self.min_tokens.max(1)) > self.block.tokens)
    }

    /// Its exact use so far, as the store settles it.
    pub fn close(&self) -> LeaseClose {
        LeaseClose {
            id: self.id,
            requests: self.handed.requests,
            tokens: self.handed.tokens,
            at_ms: self.last_handout_ms,
        }
    }

    /// Once every request of the block is out, the lease is sealed: the store dates it at its last
    /// hand-out instead of its expiry (the minute frees sooner), and it hands out no more.
    pub fn seal(&mut self) -> Option<LeaseClose> {
        if self.sealed || self.handed.requests < self.block.requests {
            return None;
        }
        self.sealed = true;
        Some(self.close())
    }

    /// What is left of the block for more requests.
    pub fn left(&self) -> u64 {
        self.block.requests.saturating_sub(self.handed.requests)
    }
}

/// A lease already settled in the store while some of its requests were still in flight: what
/// they turn out to use is written as a correction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Closed {
    pub in_flight: u64,
    pub requests_delta: i64,
    pub tokens_delta: i64,
}

/// Requests sent without a lease while the store stalled: those still in flight (at their
/// estimates) and those ended and not yet written (at their real use).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unreserved {
    pub in_flight_requests: u64,
    pub in_flight_tokens: u64,
    pub ended_requests: u64,
    pub ended_tokens: u64,
}

impl Unreserved {
    pub fn requests(&self) -> u64 {
        self.in_flight_requests + self.ended_requests
    }

    pub fn tokens(&self) -> u64 {
        self.in_flight_tokens.saturating_add(self.ended_tokens)
    }
}

/// How fast this process hands out from a slot: requests per millisecond, smoothed over windows
/// of at least a second.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rate {
    since_ms: EpochMs,
    count: u64,
    per_ms: f64,
}

const RATE_WINDOW_MS: EpochMs = 1_000;

impl Rate {
    pub fn tick(&mut self, now: EpochMs) {
        if self.since_ms == 0 || now < self.since_ms {
            self.since_ms = now;
        }
        self.count += 1;
        let elapsed = now - self.since_ms;
        if elapsed >= RATE_WINDOW_MS {
            let measured = self.count as f64 / elapsed as f64;
            self.per_ms = if self.per_ms == 0.0 {
                measured
            } else {
                (self.per_ms + measured) / 2.0
            };
            self.since_ms = now;
            self.count = 0;
        }
    }

    /// Requests expected within `span_ms`.
    pub fn expected(&self, span_ms: EpochMs, now: EpochMs) -> u64 {
        let elapsed = (now - self.since_ms).max(1);
        // A burst inside the current window counts before the window is over.
        let current = if elapsed >= 100 {
            self.count as f64 / elapsed as f64
        } else {
            0.0
        };
        (self.per_ms.max(current) * span_ms as f64).ceil() as u64
    }
}

/// Everything one process holds of one (provider, key, route).
#[derive(Debug, Default)]
pub struct Slot {
    /// Open leases, oldest first.
    pub leases: Vec<Lease>,
    pub closed: HashMap<i64, Closed>,
    /// A lease being asked for: when the ask started (real time) and its sequence number.
    pub refill: Option<(std::time::Instant, i64)>,
    /// The sequence number of an ask that failed, reused so the store can recognise a second try.
    pub retry_seq: Option<i64>,
    /// Bumped at each refusal of the store, which is kept for the requests waiting.
    pub refusals: u64,
    pub refusal: Option<RefusalSeen>,
    /// Bumped when an ask failed (the store did not answer, or answered an error).
    pub failures: u64,
    /// Requests waiting for a lease.
    pub waiting: u64,
    pub rate: Rate,
    /// A typical token estimate on this slot.
    pub tokens_per_request: u64,
    pub unreserved: Unreserved,
    /// Unreserved use on its way to the store.
    pub unreserved_writing: Unreserved,
    /// What the provider said is left and until when (its last rate-limit headers).
    pub hint: Option<(u64, EpochMs)>,
    /// The limits and day of the slot's key and route, as the last request saw them.
    pub key_limits: Limits,
    pub route_limits: Limits,
    pub day_reset_minute: u32,
    /// The newest lease's block and expiry, after it is gone.
    pub last_lease: Option<(u64, EpochMs)>,
}

/// What the store counted when it refused a lease, for every request waiting to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusalSeen {
    pub key: Usage,
    pub route: Usage,
    pub hinted_until: Option<EpochMs>,
    pub now: EpochMs,
    pub day_start: EpochMs,
}

/// What a settle or release did to the slot, for the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Followup {
    None,
    /// The lease is spent and idle: settle it now.
    Close(LeaseClose),
    /// The last request of a settled lease ended: correct it.
    Adjust {
        id: i64,
        requests: i64,
        tokens: i64,
    },
}

impl Slot {
    /// Hands one request of `tokens` out of the oldest lease it fits; its lease id.
    pub fn hand_out(&mut self, tokens: u64, now: EpochMs) -> Option<i64> {
        let lease = self
            .leases
            .iter_mut()
            .find(|l| l.fits(tokens, now) == Fit::Yes)?;
        lease.hand_out(tokens, now);
        let id = lease.id;
        if let Some((left, until)) = &mut self.hint
            && *until > now
        {
            *left = left.saturating_sub(1);
        }
        self.rate.tick(now);
        self.tokens_per_request = if self.tokens_per_request == 0 {
            tokens
        } else {
            (self.tokens_per_request * 7 + tokens) / 8
        };
        Some(id)
    }

    /// Whether some lease would take the request once its committed mark is raised.
    pub fn fits_after_commit(&self, tokens: u64, now: EpochMs) -> bool {
        self.leases
            .iter()
            .any(|l| l.fits(tokens, now) == Fit::AfterCommit)
    }

    /// Raises the provider's last word imposes: `Some(reset)` when it said nothing is left.
    pub fn hint_blocks(&self, now: EpochMs) -> Option<EpochMs> {
        self.hint
            .filter(|(left, until)| *left == 0 && *until > now)
            .map(|(_, until)| until)
    }

    /// Takes expired leases out; each to be settled in the store.
    pub fn expire(&mut self, now: EpochMs) -> Vec<LeaseClose> {
        let mut closes = Vec::new();
        let closed = &mut self.closed;
        self.leases.retain(|lease| {
            if lease.live(now) {
                return true;
            }
            if lease.in_flight > 0 {
                closed.insert(
                    lease.id,
                    Closed {
                        in_flight: lease.in_flight,
                        ..Closed::default()
                    },
                );
            }
            closes.push(lease.close());
            false
        });
        closes
    }

    /// Every lease out, whatever its state (shutdown): in-flight requests count at their estimates.
    pub fn close_all(&mut self) -> Vec<LeaseClose> {
        let closes = self.leases.iter().map(Lease::close).collect();
        self.leases.clear();
        self.closed.clear();
        closes
    }

    /// A request from lease `id` ended with `used` tokens (`None`: given back, not counted).
    pub fn resolve(&mut self, id: i64, estimate: u64, used: Option<u64>) -> Followup {
        if let Some(at) = self.leases.iter().position(|l| l.id == id) {
            let lease = &mut self.leases[at];
            match used {
                Some(used) => lease.settle(estimate, used),
                None => lease.release(estimate),
            }
            if lease.spent() && lease.in_flight == 0 {
                let close = lease.close();
                self.leases.remove(at);
                return Followup::Close(close);
            }
            return Followup::None;
        }
        let Some(closed) = self.closed.get_mut(&id) else {
            return Followup::None;
        };
        match used {
            Some(used) => closed.tokens_delta += used as i64 - estimate as i64,
            None => {
                closed.requests_delta -= 1;
                closed.tokens_delta -= estimate as i64;
            }
        }
        closed.in_flight = closed.in_flight.saturating_sub(1);
        if closed.in_flight > 0 {
            return Followup::None;
        }
        let done = self.closed.remove(&id).unwrap_or_default();
        if done.requests_delta == 0 && done.tokens_delta == 0 {
            Followup::None
        } else {
            Followup::Adjust {
                id,
                requests: done.requests_delta,
                tokens: done.tokens_delta,
            }
        }
    }

    /// Takes a new lease in.
    pub fn add(&mut self, lease: Lease) {
        self.last_lease = Some((lease.block.requests, lease.expires_ms));
        self.leases.push(lease);
    }

    /// What the last lease says about demand: a lease used up (or nearly) within its life asks
    /// for twice as much next time, so a fast start does not pay a grant per couple of requests.
    pub fn doubled_demand(&self, now: EpochMs) -> u64 {
        match self.leases.last() {
            Some(lease) if lease.left() * 4 <= lease.block.requests => lease.block.requests * 2,
            Some(_) => 0,
            None => match self.last_lease {
                Some((block, expires_ms)) if now < expires_ms => block * 2,
                _ => 0,
            },
        }
    }

    /// What is left in every open lease, for requests to come.
    pub fn left(&self, now: EpochMs) -> u64 {
        self.leases
            .iter()
            .filter(|l| l.live(now))
            .map(Lease::left)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(requests: u64, tokens: u64, committed: u64, tokens_limited: bool) -> Lease {
        Lease::new(
            LeaseGrant {
                id: 7,
                requests,
                tokens,
                committed_requests: committed,
                committed_tokens: committed_tokens(committed, requests, tokens, 10),
            },
            10_000,
            tokens_limited,
            10,
        )
    }

    #[test]
    fn hand_outs_stay_within_the_committed_mark_and_stop_at_the_expiry() {
        let mut l = lease(16, 160, 4, true);
        for _ in 0..4 {
            assert_eq!(l.fits(10, 1_000), Fit::Yes);
            l.hand_out(10, 1_000);
        }
        assert_eq!(l.fits(10, 1_000), Fit::AfterCommit);
        let raise = l.next_commit().expect("a raise");
        assert_eq!(raise.requests, 10, "three steps of 2 ahead");
        assert_eq!(l.next_commit(), None, "one raise at a time");
        l.committed_to(Some(raise));
        assert_eq!(l.fits(10, 1_000), Fit::Yes);
        assert_eq!(l.fits(10, 10_000), Fit::No, "not at its expiry");
    }

    #[test]
    fn a_lease_settles_at_what_was_handed_out_dated_at_the_last_hand_out() {
        let mut slot = Slot::default();
        slot.leases.push(lease(2, 200, 2, false));
        let a = slot.hand_out(50, 1_000).unwrap();
        let b = slot.hand_out(50, 1_500).unwrap();
        assert_eq!(slot.hand_out(50, 1_600), None, "the block is out");
        assert_eq!(slot.resolve(a, 50, Some(30)), Followup::None);
        assert_eq!(
            slot.resolve(b, 50, Some(70)),
            Followup::Close(LeaseClose {
                id: 7,
                requests: 2,
                tokens: 100,
                at_ms: 1_500
            })
        );
        assert!(slot.leases.is_empty());
    }

    #[test]
    fn an_expired_lease_is_settled_and_its_requests_in_flight_correct_it_later() {
        let mut slot = Slot::default();
        slot.leases.push(lease(10, 1_000, 10, false));
        let a = slot.hand_out(100, 1_000).unwrap();
        let b = slot.hand_out(100, 2_000).unwrap();
        let closes = slot.expire(10_000);
        assert_eq!(
            closes,
            vec![LeaseClose {
                id: 7,
                requests: 2,
                tokens: 200,
                at_ms: 2_000
            }]
        );
        assert_eq!(slot.resolve(a, 100, None), Followup::None);
        assert_eq!(
            slot.resolve(b, 100, Some(40)),
            Followup::Adjust {
                id: 7,
                requests: -1,
                tokens: -160
            }
        );
    }

    #[test]
    fn a_released_request_goes_back_to_its_lease() {
        let mut slot = Slot::default();
        slot.leases.push(lease(1, 100, 1, true));
        let a = slot.hand_out(100, 1_000).unwrap();
        assert_eq!(slot.hand_out(100, 1_000), None);
        assert_eq!(slot.resolve(a, 100, None), Followup::None);
        assert!(slot.hand_out(100, 1_001).is_some(), "room again");
    }

    #[test]
    fn the_rate_counts_a_burst_before_its_window_ends() {
        let mut rate = Rate::default();
        for i in 0..50 {
            rate.tick(1_000 + i * 4);
        }
        // 50 in 200 ms: about 250 a second, 1,250 in five.
        assert!((1_200..=1_300).contains(&rate.expected(5_000, 1_200)));
    }
}
