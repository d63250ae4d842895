//! The per-client rate limit: a GCRA bucket per client, keyed after authentication — the matched
//! client key when keys are configured (whatever whitespace it came with), else the peer address —
//! so a made-up token never buys a fresh bucket. Clients on loopback, the owner's own agents, are
//! not limited unless the limit was set explicitly (`LimitSettings::per_client`).

use freerouter::config::PerClientLimit;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

/// Who a request counts against.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ClientId {
    /// The index of the configured client key it presented.
    Key(usize),
    /// Its peer address; IPv6 by its /64, which one machine usually holds whole.
    Peer(IpAddr),
    /// No peer address known (only when embedded without a socket).
    Unknown,
}

impl ClientId {
    pub fn peer(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        };
        ClientId::Peer(ip)
    }
}

pub struct ClientLimiter<C: Clock = DefaultClock> {
    buckets: RateLimiter<ClientId, DefaultKeyedStateStore<ClientId>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    loopback_too: bool,
}

impl ClientLimiter {
    pub fn new(limit: PerClientLimit) -> Self {
        Self::with_clock(limit, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ClientLimiter<C> {
    pub fn with_clock(limit: PerClientLimit, clock: C) -> Self {
        let per_second = NonZeroU32::new(limit.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            buckets: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            loopback_too: limit.loopback_too,
        }
    }

    /// Lets a request of `client` (arriving from a loopback peer or not) through, or says how
    /// many seconds it should wait.
    pub fn check(&self, client: ClientId, from_loopback: bool) -> Result<(), u64> {
        if from_loopback && !self.loopback_too {
            return Ok(());
        }
        self.buckets.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets clients whose bucket is full again (they are indistinguishable from new ones).
    pub fn prune(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }

    /// How many clients it remembers.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    fn limit(burst: u32, per_second: u32, loopback_too: bool) -> PerClientLimit {
        PerClientLimit {
            burst,
            per_second,
            loopback_too,
        }
    }

    #[test]
    fn a_client_over_its_burst_waits_and_others_are_not_affected() {
        let clock = FakeRelativeClock::default();
        let limiter = ClientLimiter::with_clock(limit(2, 1, true), clock.clone());
        let a = ClientId::Key(0);
        assert!(limiter.check(a, false).is_ok());
        assert!(limiter.check(a, false).is_ok());
        assert_eq!(limiter.check(a, false), Err(1));
        assert!(limiter.check(ClientId::Key(1), false).is_ok());
        clock.advance(Duration::from_secs(1));
        assert!(limiter.check(a, false).is_ok());
    }

    #[test]
    fn loopback_is_spared_unless_the_limit_was_set() {
        let spared = ClientLimiter::new(limit(1, 1, false));
        let me = ClientId::peer("127.0.0.1".parse().unwrap());
        for _ in 0..10 {
            assert!(spared.check(me, true).is_ok());
        }
        let lan = ClientId::peer("192.0.2.7".parse().unwrap());
        assert!(spared.check(lan, false).is_ok());
        assert!(spared.check(lan, false).is_err());
        let everyone = ClientLimiter::new(limit(1, 1, true));
        assert!(everyone.check(me, true).is_ok());
        assert!(everyone.check(me, true).is_err());
    }

    #[test]
    fn the_addresses_of_one_ipv6_network_share_a_bucket() {
        let a = ClientId::peer("2001:db8:1:2::1".parse().unwrap());
        let b = ClientId::peer("2001:db8:1:2:ffff::9".parse().unwrap());
        assert_eq!(a, b);
        let mapped = ClientId::peer("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(mapped, ClientId::peer("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn pruning_forgets_clients_whose_bucket_has_refilled() {
        let clock = FakeRelativeClock::default();
        let limiter = ClientLimiter::with_clock(limit(5, 10, true), clock.clone());
        for i in 0..1_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = limiter.check(ClientId::peer(ip), false);
        }
        let busy = ClientId::Key(0);
        for _ in 0..5 {
            let _ = limiter.check(busy, false);
        }
        assert_eq!(limiter.tracked(), 1_001);
        clock.advance(Duration::from_millis(300));
        limiter.prune();
        assert_eq!(
            limiter.tracked(),
            1,
            "only the client that spent its burst is kept"
        );
        clock.advance(Duration::from_secs(1));
        limiter.prune();
        assert_eq!(limiter.tracked(), 0);
    }
}
