//! How much a lease asks for, how far ahead it commits, and what may go on without one when the
//! store does not answer: the rules of `quota`'s module doc, as pure functions of what was seen.

use super::window::{Usage, blocked_until};
use crate::config::Limits;
use crate::time::EpochMs;

/// A lease asks for at most this share of the room it sees, divided among the key's holders.
pub const ROOM_SHARE: u64 = 8;
/// Requests sent without a lease while the store stalls stay within this share of the room last
/// seen, divided among the key's holders.
pub const UNRESERVED_SHARE: u64 = 16;
/// A lease takes up to this many times its requests' typical tokens, room allowing.
pub const TOKEN_SLACK: u64 = 2;
/// A lease commits ahead this share of its block at a time (at least one request).
pub const COMMIT_SHARE: u64 = 8;

/// What the sizing rule looks at.
#[derive(Clone, Copy, Debug)]
pub struct SizingInput<'a> {
    pub key_limits: &'a Limits,
    pub route_limits: &'a Limits,
    /// The key across the provider and on the route, as last seen (our own live leases included).
    pub key: &'a Usage,
    pub route: &'a Usage,
    /// Other processes holding a live lease on the key.
    pub other_holders: u64,
    /// What this process expects to hand out from the slot during one lease's life.
    pub demand_requests: u64,
    /// A typical request's token estimate on the slot.
    pub tokens_per_request: u64,
    /// The token estimate of the request waiting for this lease: the least a lease may grant.
    pub min_tokens: u64,
    pub max_requests: u64,
}

/// A lease to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub requests: u64,
    pub tokens: u64,
    pub committed_requests: u64,
    pub committed_tokens: u64,
}

/// Room left in the request windows and in the token windows (`None`: no such limit).
pub fn room(limits: &[(&Limits, &Usage)]) -> (Option<u64>, Option<u64>) {
    let mut requests: Option<u64> = None;
    let mut tokens: Option<u64> = None;
    let tighten = |slot: &mut Option<u64>, limit: Option<u64>, used: u64| {
        if let Some(limit) = limit {
            let left = limit.saturating_sub(used);
            *slot = Some(slot.map_or(left, |s| s.min(left)));
        }
    };
    for (limit, usage) in limits {
        tighten(&mut requests, limit.rpm, usage.minute_requests);
        tighten(&mut requests, limit.rpd, usage.day_requests);
        tighten(&mut tokens, limit.tpm, usage.minute_tokens);
        tighten(&mut tokens, limit.tpd, usage.day_tokens);
        tighten(&mut requests, limit.rpmonth, usage.month_requests);
        tighten(&mut tokens, limit.tpmonth, usage.month_tokens);
        // As last read: a lease sized from a window's count that has since aged is only smaller.
        tighten(&mut requests, limit.rpwindow, usage.window_requests);
        tighten(&mut tokens, limit.tpwindow, usage.window_tokens);
    }
    (requests, tokens)
}

/// Whether any token limit applies to the slot (else tokens are counted but never refuse).
pub fn tokens_limited(key_limits: &Limits, route_limits: &Limits) -> bool {
    [
        key_limits.tpm,
        key_limits.tpd,
        key_limits.tpmonth,
        key_limits.tpwindow,
        route_limits.tpm,
        route_limits.tpd,
        route_limits.tpmonth,
        route_limits.tpwindow,
    ]
    .iter()
    .any(Option::is_some)
}

/// The block-size rule: what this process is expected to use in one lease's life, but at most
/// `1 / (ROOM_SHARE × holders)` of the room left, and never less than one request — so a small
/// limit or a nearly spent window gets leases of one, exactly a per-request reservation.
pub fn block_size(input: &SizingInput<'_>) -> Block {
    let (room_requests, room_tokens) = room(&[
        (input.key_limits, input.key),
        (input.route_limits, input.route),
    ]);
    let share = ROOM_SHARE.saturating_mul(input.other_holders.saturating_add(1));
    let per = input.tokens_per_request.max(input.min_tokens).max(1);
    let mut requests = input
        .demand_requests
        .min(input.max_requests)
        .min(room_requests.map_or(u64::MAX, |room| room / share))
        .max(1);
    let mut tokens = requests.saturating_mul(per).max(input.min_tokens);
    if let Some(room) = room_tokens {
        let cap = room / share;
        requests = requests.min((cap / per).max(1));
        // Room to spare for requests larger than the typical one, while the window has it, so
        // a lease is not left with requests but too few tokens for the next one.
        tokens = requests
            .saturating_mul(per)
            .saturating_mul(TOKEN_SLACK)
            .min(cap)
            .max(requests.saturating_mul(per))
            .max(input.min_tokens);
    }
    let committed_requests = first_commit(requests);
    Block {
        requests,
        tokens,
        committed_requests,
        committed_tokens: committed_tokens(committed_requests, requests, tokens, input.min_tokens),
    }
}

/// How far ahead of its hand-outs a lease of `block` requests commits.
pub fn commit_step(block: u64) -> u64 {
    (block / COMMIT_SHARE).max(1)
}

/// The committed mark a lease starts with: three steps (the whole of a small lease).
pub fn first_commit(block: u64) -> u64 {
    commit_step(block).saturating_mul(3).min(block)
}

/// The token mark that goes with `committed_requests` of a block: its share of the block's tokens,
/// but room for at least one request of `min_tokens`.
pub fn committed_tokens(
    committed_requests: u64,
    block_requests: u64,
    block_tokens: u64,
    min_tokens: u64,
) -> u64 {
    if committed_requests >= block_requests {
        return block_tokens;
    }
    let share = (block_tokens as u128 * committed_requests as u128 / block_requests.max(1) as u128)
        .min(u64::MAX as u128) as u64;
    share.max(min_tokens).min(block_tokens)
}

/// The stalled-store policy for one request: go on without a lease only when every limit left
/// room for many requests like it when last seen — what this process sent unreserved, this one
/// included, stays within `1 / (UNRESERVED_SHARE × holders)` of that room in every window.
pub fn may_go_unreserved(
    limits: &[(&Limits, &Usage)],
    other_holders: u64,
    unreserved_requests: u64,
    unreserved_tokens: u64,
    tokens: u64,
) -> bool {
    let (room_requests, room_tokens) = room(limits);
    let share = UNRESERVED_SHARE.saturating_mul(other_holders.saturating_add(1));
    let requests_ok = room_requests.is_none_or(|room| room / share > unreserved_requests);
    let tokens_ok = room_tokens
        .is_none_or(|room| room / share >= unreserved_tokens.saturating_add(tokens.max(1)));
    requests_ok && tokens_ok
}

/// Where a spent limit applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The key across all of the provider's routes.
    Key,
    /// The key on this route only.
    Route,
}

/// Why the store refused a lease, as a request of `tokens` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No room for any request: room again at `until_ms`.
    Spent { until_ms: EpochMs, scope: Scope },
    /// Room for smaller requests, not for this one.
    TooLarge,
    /// Room by the ledger's counts: a race with another process, or what the provider said is
    /// left was used up (then `hinted_until`).
    Raced { hinted_until: Option<EpochMs> },
}

/// Reads a refusal from what the ledger counts: the key only rests when even a request of no
/// tokens would be refused; a large request alone does not bench it.
#[allow(clippy::too_many_arguments)]
pub fn refusal(
    key_limits: &Limits,
    route_limits: &Limits,
    key: &Usage,
    route: &Usage,
    hinted_until: Option<EpochMs>,
    tokens: u64,
    now: EpochMs,
    day_start: EpochMs,
) -> Refusal {
    if let Some(until_ms) = blocked_until(key_limits, key, 0, now, day_start) {
        return Refusal::Spent {
            until_ms,
            scope: Scope::Key,
        };
    }
    if let Some(until_ms) = blocked_until(route_limits, route, 0, now, day_start) {
        return Refusal::Spent {
            until_ms,
            scope: Scope::Route,
        };
    }
    if blocked_until(key_limits, key, tokens, now, day_start).is_some()
        || blocked_until(route_limits, route, tokens, now, day_start).is_some()
    {
        return Refusal::TooLarge;
    }
    Refusal::Raced { hinted_until }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u64>, rpd: Option<u64>, tpm: Option<u64>) -> Limits {
        Limits {
            rpm,
            rpd,
            tpm,
            ..Limits::default()
        }
    }

    fn input<'a>(
        key_limits: &'a Limits,
        key: &'a Usage,
        other_holders: u64,
        demand_requests: u64,
    ) -> SizingInput<'a> {
        static NONE: Limits = Limits {
            rpm: None,
            rpd: None,
            tpm: None,
            tpd: None,
            rpmonth: None,
            tpmonth: None,
            window_hours: None,
            rpwindow: None,
            tpwindow: None,
        };
        static NOTHING: Usage = Usage {
            minute_requests: 0,
            minute_tokens: 0,
            minute_oldest_ms: None,
            day_requests: 0,
            day_tokens: 0,
            month_requests: 0,
            month_tokens: 0,
            window_requests: 0,
            window_tokens: 0,
            window_oldest_ms: None,
        };
        SizingInput {
            key_limits,
            route_limits: &NONE,
            key,
            route: &NOTHING,
            other_holders,
            demand_requests,
            tokens_per_request: 100,
            min_tokens: 100,
            max_requests: 256,
        }
    }

    #[test]
    fn a_small_limit_gets_leases_of_one_whatever_the_demand() {
        let five = limits(Some(5), None, None);
        let fresh = Usage::default();
        let block = block_size(&input(&five, &fresh, 0, 1_000));
        assert_eq!(
            block,
            Block {
                requests: 1,
                tokens: 100,
                committed_requests: 1,
                committed_tokens: 100
            }
        );
        // Up to 15 requests a minute, still one at a time: 15 / 8 rounds down to 1.
        let fifteen = limits(Some(15), None, None);
        assert_eq!(block_size(&input(&fifteen, &fresh, 0, 1_000)).requests, 1);
    }

    #[test]
    fn plenty_of_room_and_fast_use_get_large_leases_and_slow_use_small_ones() {
        let big = limits(Some(10_000), Some(1_000_000), None);
        let fresh = Usage::default();
        assert_eq!(block_size(&input(&big, &fresh, 0, 1_000)).requests, 256);
        assert_eq!(block_size(&input(&big, &fresh, 0, 40)).requests, 40);
        assert_eq!(block_size(&input(&big, &fresh, 0, 0)).requests, 1);
    }

    #[test]
    fn a_nearly_spent_window_and_other_holders_shrink_the_lease() {
        let big = limits(Some(1_000), None, None);
        let nearly = Usage {
            minute_requests: 990,
            ..Usage::default()
        };
        assert_eq!(block_size(&input(&big, &nearly, 0, 500)).requests, 1);
        let half = Usage {
            minute_requests: 500,
            ..Usage::default()
        };
        assert_eq!(block_size(&input(&big, &half, 0, 500)).requests, 62);
        assert_eq!(block_size(&input(&big, &half, 1, 500)).requests, 31);
        assert_eq!(block_size(&input(&big, &half, 3, 500)).requests, 15);
    }

    #[test]
    fn the_token_room_bounds_the_lease_too() {
        let tokens = limits(None, None, Some(8_000));
        let fresh = Usage::default();
        // 8,000 / 8 = 1,000 tokens at 100 a request.
        let block = block_size(&input(&tokens, &fresh, 0, 100));
        assert_eq!((block.requests, block.tokens), (10, 1_000));
        // With room to spare, twice the typical tokens.
        let block = block_size(&input(&tokens, &fresh, 0, 3));
        assert_eq!((block.requests, block.tokens), (3, 600));
        // Nearly spent: one request of the waiting size.
        let spent = Usage {
            minute_tokens: 7_800,
            ..Usage::default()
        };
        let block = block_size(&input(&tokens, &spent, 0, 100));
        assert_eq!((block.requests, block.tokens), (1, 100));
    }

    #[test]
    fn a_lease_commits_three_steps_ahead_and_a_small_one_whole() {
        assert_eq!((commit_step(256), first_commit(256)), (32, 96));
        assert_eq!((commit_step(4), first_commit(4)), (1, 3));
        assert_eq!(first_commit(2), 2);
        assert_eq!(first_commit(1), 1);
        assert_eq!(committed_tokens(64, 256, 25_600, 100), 6_400);
        assert_eq!(committed_tokens(1, 256, 256, 100), 100);
        assert_eq!(committed_tokens(4, 4, 400, 100), 400);
    }

    #[test]
    fn only_keys_with_room_for_many_requests_go_on_unreserved() {
        let five = limits(Some(5), None, None);
        let big = limits(None, Some(1_000_000), Some(10_000_000));
        let fresh = Usage::default();
        assert!(!may_go_unreserved(&[(&five, &fresh)], 0, 0, 0, 10));
        assert!(may_go_unreserved(&[(&big, &fresh)], 0, 0, 0, 10));
        // 1,000,000 / 16 / 2 holders = 31,250 requests at most.
        assert!(may_go_unreserved(&[(&big, &fresh)], 1, 31_249, 0, 10));
        assert!(!may_go_unreserved(&[(&big, &fresh)], 1, 31_250, 0, 10));
        // Tokens: 10,000,000 / 16 = 625,000.
        assert!(!may_go_unreserved(&[(&big, &fresh)], 0, 0, 624_999, 10));
    }
}
