//! The quota ledger: every upstream attempt reserves one request and its estimated tokens against
//! the key's limits before it is sent, settles with the real usage after, or releases on a refusal.
//! Limits come from the catalog (per key across a provider, per key on a route); windows are a
//! sliding minute, the provider's own day, the calendar month (UTC) and a rolling window of
//! `window_hours` (summed from minute buckets up to 47 h, hourly ones beyond, the first bucket
//! counted whole: it errs toward holding back, never toward passing). The request path never waits on SQLite: it reserves
//! from **quota leases** held in memory.
//!
//! # Leases
//! A process takes a block of a key's windows — N requests and T tokens on one (key, route) — in
//! one checked statement (`store::ledger_sql::GRANT`, the per-request reservation of old, for a
//! block: it grants as much of the ask as every limit has room for, at least one request of the
//! waiting size, or nothing). A reservation is then a decrement in memory; settles and releases
//! adjust the lease in memory; the store hears of the lease again only when it is settled, as one
//! row with its exact use, when it is spent and idle, when it expires (`quota.lease_ttl_ms`,
//! seconds), or at shutdown. The unused part of a lease is thereby given back.
//!
//! **Block size** (`grants::block_size`): what this process is expected to hand out from the slot
//! in one lease's life (its measured rate × the TTL, plus the requests waiting), but at most
//! `room / (8 × holders)` — `room` the fewest requests (and tokens) any of the key's and route's
//! windows has left as last seen, `holders` the processes with a live lease on the key, this one
//! included — and at most `quota.max_lease_requests`; never less than one (a lease used up
//! within its life asks for twice as much next time, so a fast start grows quickly). Its tokens
//! are twice its requests' typical estimate where the token windows have room for it (within the
//! same share), so a request larger than the typical one still fits. So a limit under 16
//! requests, or a window with under 8 × holders requests left, gets leases of one: exactly a
//! per-request reservation, as before leases (a 5 RPM key's request is one checked grant and
//! its settle, plus the seal that dates it at once, all off the request's path but the grant). A slot whose leases are at least 4 asks for the next one when a quarter of the current
//! is left or a quarter of its life, so a steady flow never waits.
//!
//! **Worst case**: each live lease is counted whole by every process, so the key is never
//! overspent, whatever the holders do. What the leases can strand is their unused part, which only
//! other processes miss: at most `room / 8` of the room seen when they were granted, summed over
//! holders, for at most one TTL (or until the holder's next request takes it). A burst
//! across processes therefore serves all of a key's limit but what the last leases hold unused
//! when their holders stop asking, a share that shrinks to one request per holder as the window
//! runs out (each lease is sized against what is left).
//!
//! # Crash safety
//! A lease's row is dated at its **expiry**, not at its grant: every request handed out from it
//! counts in the sliding minute at least as long as it really is in it (and a lease never reaches
//! past the provider's day reset, so it counts in the day it was used); once every request of it
//! is handed out it is **sealed** — re-dated at its last hand-out, so a spent window frees a minute
//! after its last request, not after its lease's expiry. While live, the row counts its whole
//! block. Before handing out, the holder raises a **committed mark** on the row (a background
//! write keeping it two to three steps of `block / 8` ahead of the hand-outs; a request waits for
//! the raise only if the hand-outs outrun it): a lease that expires unsettled — its process died
//! — counts exactly that mark, so every request the dead process may have sent stays counted, and the rest
//! of its block returns when its TTL ends. Worst case after a crash: the mark's margin (at most
//! three steps, 3/8 of each live lease) and the requests cut in flight count as spent in their
//! windows although never served — brief under-use, never overspend. A normal settle writes the
//! exact use and re-dates the row at its last hand-out; requests still in flight at a lease's
//! expiry count at their estimates and correct the row when they end. Leases a dead process left
//! behind are settled at their mark by the pruner a minute after they expire.
//!
//! # A stalled store
//! A lease is waited for at most `quota.reserve_timeout_ms` when the store is stalled — its write
//! queue stuck on one batch that long, as when another process holds SQLite's write lock; a store
//! that is only busy (still finishing batches, as in a burst) is waited for up to eight timeouts.
//! A slot whose ask is stuck does not wait again. Past that, a request goes on **unreserved** only
//! when, as last seen, every window of its key and route had room for many requests like it: what
//! this process sends unreserved stays within `room / (16 × holders)` of each window
//! (`grants::may_go_unreserved`), so all holders together stay within a sixteenth of the room —
//! keys with large limits relative to one request keep serving. (This is the one place a limit
//! can be overspent: by at most that sixteenth, when other processes take the same room before the
//! unreserved use is written.) Any other key (small limits, or never seen) is **skipped** for a
//! second (`Grant::Stalled`: the request moves to the next key or route, and with none left gets
//! 429 `quota_exhausted`). Both are counted in `freerouter_quota_unreserved_total{outcome}`. What
//! was sent unreserved is written as one settled row per slot once the store answers; the lease
//! ask that was pending is never withdrawn — when it lands it is used like any other — and every
//! write carries this process's id and a sequence number under a unique index, so a write our side
//! gave up on and retried can never count twice.
//!
//! # Shutdown
//! [`Ledger::shutdown`] waits for the requests in flight (each holds a [`HeldReservation`]), asks
//! the remaining ones to end ([`Ledger::draining`]), settles every lease with its exact use, writes
//! the unreserved use, and waits for the store to take all of it.
//!
//! # Reading it back
//! Headroom for choosing among keys, the room check after a provider says a key is spent, and the
//! `/metrics` gauges read what this process last saw of each key (`seen.rs`), refreshed from the
//! store every `quota.refresh_ms` and moved on by its own grants in between; rate-limit headers cap
//! what is handed out from memory until their reset. None of them touches the store on the path.
//!
//! Layout: `window.rs` (window arithmetic), `grants.rs` (sizing and policy rules), `leases.rs`
//! (leases in memory), `seen.rs` (the view of each key), `ledger.rs` (the ledger: reserving, the
//! stalled-store policy, reading the view), `refill.rs` (asking the store for leases), `writes.rs`
//! (what follows in the store), `keeper.rs` (the background pass and shutdown), `reservation.rs`
//! (what a request holds).

mod grants;
mod keeper;
mod leases;
mod ledger;
mod refill;
mod reservation;
mod seen;
pub mod window;
mod writes;

pub use grants::{Block, SizingInput};
pub use grants::{ROOM_SHARE, Scope, UNRESERVED_SHARE, block_size, commit_step, first_commit};
pub use ledger::{Grant, Ledger};
pub use reservation::{HeldReservation, Reservation};

#[cfg(test)]
mod tests;
