//! The tiers' own rate limits, in fixed windows of the wall clock (the minute, the UTC day), as
//! free tiers keep them: what the tier admits, and the `x-ratelimit-*` it tells the gateway.
//! The gateway's ledger keeps the same limits in sliding windows (stricter), so these refuse only
//! what it would have let through by mistake.

use super::tiers::Tier;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// One tier's counts in the current windows.
#[derive(Default)]
pub struct Windows {
    minute: (i64, u64),
    day: (i64, u64),
}

/// What a call is told.
pub enum Admission {
    /// Served: the tightest window's limit, what is left of it, and when it resets.
    Admitted {
        limit: u64,
        remaining: u64,
        reset_ms: i64,
    },
    /// Over a limit: come back when its window ends.
    Refused { retry_after_ms: i64 },
    /// The tier has no limits.
    Unlimited,
}

impl Windows {
    pub fn admit(&mut self, tier: &Tier, now_ms: i64) -> Admission {
        let minute_start = now_ms - now_ms.rem_euclid(MINUTE_MS);
        let day_start = now_ms - now_ms.rem_euclid(DAY_MS);
        if self.minute.0 != minute_start {
            self.minute = (minute_start, 0);
        }
        if self.day.0 != day_start {
            self.day = (day_start, 0);
        }
        let windows = [
            (tier.rpm, self.minute.1, minute_start + MINUTE_MS),
            (tier.rpd, self.day.1, day_start + DAY_MS),
        ];
        let mut tightest: Option<(u64, u64, i64)> = None;
        for (limit, used, ends) in windows {
            let Some(limit) = limit else { continue };
            if used >= limit {
                return Admission::Refused {
                    retry_after_ms: ends - now_ms,
                };
            }
            let left = limit - used - 1;
            if tightest.is_none_or(|(_, l, _)| left < l) {
                tightest = Some((limit, left, ends));
            }
        }
        self.minute.1 += 1;
        self.day.1 += 1;
        match tightest {
            Some((limit, remaining, ends)) => Admission::Admitted {
                limit,
                remaining,
                reset_ms: ends - now_ms,
            },
            None => Admission::Unlimited,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::tiers::tier;

    #[test]
    fn a_tier_admits_its_limit_in_a_minute_then_refuses_until_the_next() {
        let swift = tier("swift-8b").unwrap();
        let mut windows = Windows::default();
        let start = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS;
        for n in 0..12 {
            match windows.admit(swift, start + n) {
                Admission::Admitted { remaining, .. } => assert_eq!(remaining, 11 - n as u64),
                _ => panic!("call {n} should be admitted"),
            }
        }
        match windows.admit(swift, start + 20_000) {
            Admission::Refused { retry_after_ms } => assert_eq!(retry_after_ms, 40_000),
            _ => panic!("the 13th call in a minute is refused"),
        }
        assert!(matches!(
            windows.admit(swift, start + MINUTE_MS),
            Admission::Admitted { .. }
        ));
    }

    #[test]
    fn the_daily_quota_outlasts_the_minute() {
        let sage = tier("sage-70b").unwrap();
        let mut windows = Windows::default();
        let day = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS;
        let admitted = (0..10)
            .filter(|n| {
                matches!(
                    windows.admit(sage, day + n * MINUTE_MS),
                    Admission::Admitted { .. }
                )
            })
            .count();
        assert_eq!(admitted, 5);
    }
}
