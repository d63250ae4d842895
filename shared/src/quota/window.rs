//! Quota windows as pure functions of time: the sliding minute, the provider's day, the calendar
//! month (UTC), a rolling window of hours, and when a spent limit has room again.

use crate::config::Limits;
use crate::time::EpochMs;

pub const MINUTE_MS: EpochMs = 60_000;
pub const HOUR_MS: EpochMs = 3_600_000;
pub const DAY_MS: EpochMs = 86_400_000;

/// Rolling windows up to this many hours are summed from the one-minute buckets (kept two days);
/// longer ones from the one-hour buckets (kept 32 days).
const LONGEST_WINDOW_OF_MINUTES: u32 = 47;

/// A rolling window as the store counts it: the buckets of `grain` that start at or after
/// `start`. The bucket holding the window's first instant counts whole, so the count errs by at
/// most one bucket toward holding back, never toward passing the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rolling {
    pub grain: EpochMs,
    pub start: EpochMs,
}

impl Rolling {
    /// The window of `hours` that ends at `now`; with no window, one that counts nothing.
    pub fn ending_at(hours: Option<u32>, now: EpochMs) -> Self {
        match hours {
            None => Rolling {
                grain: MINUTE_MS,
                start: EpochMs::MAX,
            },
            Some(hours) => {
                let grain = bucket_grain(hours);
                Rolling {
                    grain,
                    start: (now - EpochMs::from(hours) * HOUR_MS).div_euclid(grain) * grain,
                }
            }
        }
    }
}

fn bucket_grain(hours: u32) -> EpochMs {
    if hours <= LONGEST_WINDOW_OF_MINUTES {
        MINUTE_MS
    } else {
        HOUR_MS
    }
}

/// When use that began at `oldest_ms` stops counting in a rolling window of `hours`: once the
/// window's first bucket starts after the bucket holding it.
pub fn rolling_leaves_at(hours: u32, oldest_ms: EpochMs) -> EpochMs {
    let grain = bucket_grain(hours);
    oldest_ms.div_euclid(grain) * grain + grain + EpochMs::from(hours) * HOUR_MS
}

/// The start of the day window containing `now` for a provider whose day resets
/// `reset_minute` minutes after UTC midnight.
pub fn day_window_start(now: EpochMs, reset_minute: u32) -> EpochMs {
    let offset = reset_minute as EpochMs * MINUTE_MS;
    (now - offset).div_euclid(DAY_MS) * DAY_MS + offset
}

/// The first instant of the calendar month (UTC) after the one containing `now`: when monthly
/// quotas (Cohere's calls, Mistral's tokens) come back.
pub fn next_month_start(now: EpochMs) -> EpochMs {
    let days = now.div_euclid(DAY_MS);
    let (year, month, _) = civil_from_days(days);
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(year, month, 1) * DAY_MS
}

/// The first instant of the calendar month (UTC) containing `now`: where monthly quotas count from.
pub fn month_start(now: EpochMs) -> EpochMs {
    let days = now.div_euclid(DAY_MS);
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, month, 1) * DAY_MS
}

/// The calendar day (UTC) of an instant, as `2027-01-01`.
pub fn utc_date(at_ms: EpochMs) -> String {
    let (year, month, day) = civil_from_days(at_ms.div_euclid(DAY_MS));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic Gregorian (H. Hinnant).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What one key has used, over one scope (the key across the provider, or the key on one route).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub minute_requests: u64,
    pub minute_tokens: u64,
    /// The oldest reservation still inside the sliding minute.
    pub minute_oldest_ms: Option<EpochMs>,
    pub day_requests: u64,
    pub day_tokens: u64,
    /// Since the start of the calendar month (UTC).
    pub month_requests: u64,
    pub month_tokens: u64,
    /// In the scope's rolling window of `window_hours`, if its limits have one.
    pub window_requests: u64,
    pub window_tokens: u64,
    /// The oldest use still inside the rolling window: room returns when it leaves.
    pub window_oldest_ms: Option<EpochMs>,
}

impl Usage {
    /// This use with `held` (counted, not spent) taken off; the minute's oldest row is kept.
    pub fn less(&self, held: &Usage) -> Usage {
        Usage {
            minute_requests: self.minute_requests.saturating_sub(held.minute_requests),
            minute_tokens: self.minute_tokens.saturating_sub(held.minute_tokens),
            minute_oldest_ms: self.minute_oldest_ms,
            day_requests: self.day_requests.saturating_sub(held.day_requests),
            day_tokens: self.day_tokens.saturating_sub(held.day_tokens),
            month_requests: self.month_requests.saturating_sub(held.month_requests),
            month_tokens: self.month_tokens.saturating_sub(held.month_tokens),
            window_requests: self.window_requests.saturating_sub(held.window_requests),
            window_tokens: self.window_tokens.saturating_sub(held.window_tokens),
            window_oldest_ms: self.window_oldest_ms,
        }
    }

    /// The requests and tokens the rolling window of `limits` counts at `now`, and when its
    /// oldest use leaves it. A sighting whose oldest use has left since it was read no longer
    /// says what the window holds: it counts nothing, and the store's check decides.
    fn in_window(&self, limits: &Limits, now: EpochMs) -> Option<(u64, u64, EpochMs)> {
        let hours = limits.window_hours?;
        let leaves = self
            .window_oldest_ms
            .map_or(now + EpochMs::from(hours) * HOUR_MS, |oldest| {
                rolling_leaves_at(hours, oldest)
            });
        (leaves > now).then_some((self.window_requests, self.window_tokens, leaves))
    }

    /// The rolling window's requests and tokens as `limits` count them at `now` (0 with no window).
    pub fn window_counts(&self, limits: &Limits, now: EpochMs) -> (u64, u64) {
        self.in_window(limits, now)
            .map_or((0, 0), |(requests, tokens, _)| (requests, tokens))
    }
}

/// When `limits` have room again for one more request of `tokens`, if they have none now.
pub fn blocked_until(
    limits: &Limits,
    usage: &Usage,
    tokens: u64,
    now: EpochMs,
    day_start: EpochMs,
) -> Option<EpochMs> {
    let over =
        |limit: Option<u64>, used: u64, adding: u64| limit.is_some_and(|l| used + adding > l);
    let minute_free = usage
        .minute_oldest_ms
        .map_or(now, |oldest| oldest + MINUTE_MS)
        .max(now + 1);
    let day_free = day_start + DAY_MS;
    let mut until: Option<EpochMs> = None;
    let mut block = |at: EpochMs| until = Some(until.map_or(at, |u: EpochMs| u.max(at)));
    if over(limits.rpd, usage.day_requests, 1) || over(limits.tpd, usage.day_tokens, tokens) {
        block(day_free);
    }
    if over(limits.rpmonth, usage.month_requests, 1)
        || over(limits.tpmonth, usage.month_tokens, tokens)
    {
        block(next_month_start(now));
    }
    if let Some((requests, used_tokens, leaves)) = usage.in_window(limits, now)
        && (over(limits.rpwindow, requests, 1) || over(limits.tpwindow, used_tokens, tokens))
    {
        block(leaves);
    }
    if over(limits.rpm, usage.minute_requests, 1) || over(limits.tpm, usage.minute_tokens, tokens) {
        block(minute_free);
    }
    until
}

/// How much of `limits` is left, 0.0 (spent) to 1.0 (untouched or unlimited): the tightest limit decides.
pub fn headroom(limits: &Limits, usage: &Usage, now: EpochMs) -> f64 {
    let (window_requests, window_tokens) = usage.window_counts(limits, now);
    [
        (limits.rpm, usage.minute_requests),
        (limits.tpm, usage.minute_tokens),
        (limits.rpd, usage.day_requests),
        (limits.tpd, usage.day_tokens),
        (limits.rpmonth, usage.month_requests),
        (limits.tpmonth, usage.month_tokens),
        (limits.rpwindow, window_requests),
        (limits.tpwindow, window_tokens),
    ]
    .into_iter()
    .filter_map(|(limit, used)| {
        limit.map(|l| {
            if l == 0 {
                0.0
            } else {
                1.0 - (used.min(l) as f64 / l as f64)
            }
        })
    })
    .fold(1.0, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT: EpochMs = 1_798_761_600_000; // 2027-01-01T00:00:00Z

    #[test]
    fn monthly_quotas_come_back_on_the_first_of_the_next_calendar_month_utc() {
        // 2026-12-02 → 2027-01-01; the last millisecond of December still turns then.
        assert_eq!(next_month_start(MIDNIGHT - 30 * DAY_MS), MIDNIGHT);
        assert_eq!(next_month_start(MIDNIGHT - 1), MIDNIGHT);
        // The first instant of January belongs to January: February 1st is next.
        assert_eq!(next_month_start(MIDNIGHT), MIDNIGHT + 31 * DAY_MS);
        // 2028 is a leap year: 2028-02-10 → 2028-03-01.
        let feb_first_2028 = MIDNIGHT + (365 + 31) * DAY_MS;
        assert_eq!(
            next_month_start(feb_first_2028 + 9 * DAY_MS),
            feb_first_2028 + 29 * DAY_MS
        );
    }

    #[test]
    fn a_spent_month_waits_for_the_first_of_the_next_month_and_not_for_the_day() {
        let limits = Limits {
            rpd: Some(100),
            rpmonth: Some(1_000),
            tpmonth: Some(50_000),
            ..Limits::default()
        };
        let usage = Usage {
            day_requests: 3,
            month_requests: 1_000,
            ..Usage::default()
        };
        // 2026-12-31 23:00 UTC: back at 2027-01-01 00:00, whatever the day's reset.
        let late = MIDNIGHT - 3_600_000;
        assert_eq!(month_start(late), MIDNIGHT - 31 * DAY_MS);
        assert_eq!(month_start(MIDNIGHT), MIDNIGHT);
        assert_eq!(
            blocked_until(&limits, &usage, 0, late, MIDNIGHT - DAY_MS),
            Some(MIDNIGHT)
        );
        let tokens = Usage {
            month_tokens: 49_900,
            ..Usage::default()
        };
        assert!(blocked_until(&limits, &tokens, 100, late, 0).is_none());
        assert_eq!(
            blocked_until(&limits, &tokens, 101, late, 0),
            Some(MIDNIGHT)
        );
    }

    #[test]
    fn the_day_window_starts_at_the_providers_reset_time() {
        assert_eq!(day_window_start(MIDNIGHT + 5 * MINUTE_MS, 0), MIDNIGHT);
        assert_eq!(day_window_start(MIDNIGHT - 1, 0), MIDNIGHT - DAY_MS);
        // Reset at 08:00 UTC (midnight US Pacific): 07:59 still belongs to the previous day.
        let eight = MIDNIGHT + 8 * 60 * MINUTE_MS;
        assert_eq!(day_window_start(eight - 1, 480), eight - DAY_MS);
        assert_eq!(day_window_start(eight, 480), eight);
        assert_eq!(day_window_start(eight + 1, 480), eight);
    }

    #[test]
    fn a_spent_minute_frees_when_its_oldest_request_leaves_the_window() {
        let limits = Limits {
            rpm: Some(2),
            ..Limits::default()
        };
        let usage = Usage {
            minute_requests: 2,
            minute_oldest_ms: Some(10_000),
            ..Usage::default()
        };
        assert_eq!(blocked_until(&limits, &usage, 0, 30_000, 0), Some(70_000));
        let room = Usage {
            minute_requests: 1,
            ..usage
        };
        assert_eq!(blocked_until(&limits, &room, 0, 30_000, 0), None);
    }

    #[test]
    fn a_spent_day_waits_for_the_next_reset_and_not_for_the_minute() {
        let limits = Limits {
            rpm: Some(30),
            rpd: Some(100),
            ..Limits::default()
        };
        let usage = Usage {
            minute_requests: 1,
            minute_oldest_ms: Some(MIDNIGHT + 5),
            day_requests: 100,
            ..Usage::default()
        };
        assert_eq!(
            blocked_until(&limits, &usage, 0, MIDNIGHT + 10, MIDNIGHT),
            Some(MIDNIGHT + DAY_MS)
        );
    }

    #[test]
    fn tokens_count_against_the_token_limits() {
        let limits = Limits {
            tpm: Some(6_000),
            ..Limits::default()
        };
        let usage = Usage {
            minute_tokens: 5_500,
            minute_oldest_ms: Some(0),
            ..Usage::default()
        };
        assert!(blocked_until(&limits, &usage, 400, 1_000, 0).is_none());
        assert_eq!(
            blocked_until(&limits, &usage, 600, 1_000, 0),
            Some(MINUTE_MS)
        );
    }

    #[test]
    fn headroom_is_the_tightest_fraction_left() {
        let limits = Limits {
            rpm: Some(10),
            rpd: Some(100),
            ..Limits::default()
        };
        let usage = Usage {
            minute_requests: 5,
            day_requests: 90,
            ..Usage::default()
        };
        assert!((headroom(&limits, &usage, 0) - 0.1).abs() < 1e-9);
        assert_eq!(headroom(&Limits::default(), &usage, 0), 1.0);
    }

    #[test]
    fn a_rolling_window_counts_whole_minute_buckets_and_long_ones_whole_hours() {
        let now = MIDNIGHT + 5 * HOUR_MS + 30 * MINUTE_MS + 15_000;
        assert_eq!(
            Rolling::ending_at(Some(5), now),
            Rolling {
                grain: MINUTE_MS,
                start: MIDNIGHT + 30 * MINUTE_MS
            }
        );
        assert_eq!(
            Rolling::ending_at(Some(168), now),
            Rolling {
                grain: HOUR_MS,
                start: MIDNIGHT - 7 * DAY_MS + 5 * HOUR_MS
            }
        );
        assert_eq!(Rolling::ending_at(None, now).start, EpochMs::MAX);
    }

    #[test]
    fn a_spent_rolling_window_frees_when_its_oldest_use_leaves_it_and_not_before() {
        let limits = Limits {
            rpd: Some(1_000),
            window_hours: Some(5),
            rpwindow: Some(40),
            tpwindow: Some(100_000),
            ..Limits::default()
        };
        let oldest = MIDNIGHT + 10 * MINUTE_MS + 7_000;
        let usage = Usage {
            day_requests: 40,
            window_requests: 40,
            window_tokens: 20_000,
            window_oldest_ms: Some(oldest),
            ..Usage::default()
        };
        let now = MIDNIGHT + 3 * HOUR_MS;
        // The bucket of 00:10 leaves the window when the window starts at 00:11, at 05:11.
        let leaves = MIDNIGHT + 5 * HOUR_MS + 11 * MINUTE_MS;
        assert_eq!(
            blocked_until(&limits, &usage, 0, now, MIDNIGHT),
            Some(leaves)
        );
        assert_eq!(
            blocked_until(&limits, &usage, 0, leaves - 1, MIDNIGHT),
            Some(leaves)
        );
        assert_eq!(blocked_until(&limits, &usage, 0, leaves, MIDNIGHT), None);
        let tokens = Usage {
            window_requests: 3,
            ..usage
        };
        assert!(blocked_until(&limits, &tokens, 80_000, now, MIDNIGHT).is_none());
        assert_eq!(
            blocked_until(&limits, &tokens, 80_001, now, MIDNIGHT),
            Some(leaves)
        );
        assert!((headroom(&limits, &usage, now)).abs() < 1e-9);
        assert!(blocked_until(&Limits::default(), &usage, 0, now, MIDNIGHT).is_none());
    }
}
