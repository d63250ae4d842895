//! The failure table of DESIGN.md §6 as a pure function: what a failed attempt means for the request
//! and for the route's health. Time and jitter are parameters.

use crate::config::RoutingSettings;
use crate::health::RouteFailure;
use crate::providers::{FailureKind, Spent, SpentWindow, UpstreamFailure};
use crate::time::EpochMs;

/// What the request does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait, then the same route with the same key.
    RetrySame {
        after_ms: u64,
    },
    /// This key is spent on this route: the route's next key, else the next route.
    NextKey,
    NextRoute,
    /// Only routes whose window is larger than this.
    LargerWindow {
        than_tokens: u64,
    },
    /// The upstream's answer goes to the client as it is.
    ReturnToClient,
}

/// What the failure does to health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    CoolKey {
        until_ms: EpochMs,
        reason: &'static str,
        /// The key rests on every route of its provider (a quota of the key, not of the model).
        whole_key: bool,
    },
    EscalateKey,
    RouteFailure(RouteFailure),
    InvalidKey {
        status: u16,
    },
    LearnWindow {
        tokens: u64,
    },
}

/// What this request has already spent on the current route and key.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouteTries {
    pub near_reset_waited: bool,
    pub hintless_429s: u32,
    pub quick_retry_used: bool,
}

/// The situation a failure is judged in.
pub struct Judgement<'a> {
    pub settings: &'a RoutingSettings,
    pub now: EpochMs,
    /// Uniform in [0, 1): spreads retries of many clients apart.
    pub jitter: f64,
    /// Prompt estimate plus requested output.
    pub needed_tokens: u64,
    /// The route's window as the engine knows it.
    pub window_tokens: u64,
    /// When the provider's daily quotas next reset.
    pub next_day_reset_ms: EpochMs,
    /// When monthly quotas next reset (the calendar month, UTC).
    pub next_month_reset_ms: EpochMs,
}

fn jittered(base_ms: u64, jitter: f64) -> u64 {
    base_ms / 2 + (base_ms as f64 * jitter) as u64
}

/// Decides what one failed attempt means.
pub fn decide(
    failure: &UpstreamFailure,
    tries: &mut RouteTries,
    j: &Judgement<'_>,
) -> (Decision, Vec<Effect>) {
    let s = j.settings;
    match failure.kind {
        FailureKind::RateLimited => rate_limited(failure, tries, j),
        FailureKind::Server | FailureKind::Reset => {
            let effects = vec![Effect::RouteFailure(RouteFailure::Error)];
            if tries.quick_retry_used {
                (Decision::NextRoute, effects)
            } else {
                tries.quick_retry_used = true;
                (
                    Decision::RetrySame {
                        after_ms: jittered(s.retry_pause_ms, j.jitter),
                    },
                    effects,
                )
            }
        }
        FailureKind::Connect
        | FailureKind::Malformed
        | FailureKind::BodyTooLarge
        | FailureKind::Redirect => (
            Decision::NextRoute,
            vec![Effect::RouteFailure(RouteFailure::Error)],
        ),
        FailureKind::HeaderTimeout | FailureKind::FirstTokenTimeout | FailureKind::StreamIdle => (
            Decision::NextRoute,
            vec![Effect::RouteFailure(RouteFailure::Timeout)],
        ),
        FailureKind::NotFound => (
            Decision::NextRoute,
            vec![Effect::RouteFailure(RouteFailure::NotFound)],
        ),
        FailureKind::ContextLength => {
            // The route's window is learned only from a stated number that makes sense: not
            // tiny, below what the catalog says, and near what this request needed (a request
            // of 50 tokens cannot have outgrown a window of 4,096).
            let plausible = failure.stated_window.filter(|&window| {
                window >= MIN_LEARNED_WINDOW
                    && window < j.window_tokens
                    && j.needed_tokens.saturating_mul(2) >= window
            });
            (
                Decision::LargerWindow {
                    than_tokens: j.window_tokens,
                },
                plausible
                    .map(|tokens| vec![Effect::LearnWindow { tokens }])
                    .unwrap_or_default(),
            )
        }
        // The request asked for something this route lacks: the next one may have it.
        FailureKind::Unsupported => (Decision::NextRoute, vec![]),
        FailureKind::ContentPolicy | FailureKind::ClientError => (Decision::ReturnToClient, vec![]),
        FailureKind::Auth => (
            Decision::NextKey,
            vec![Effect::InvalidKey {
                status: failure.status.unwrap_or(401),
            }],
        ),
        FailureKind::PaymentRequired => (
            Decision::NextKey,
            vec![Effect::CoolKey {
                until_ms: j.now + s.short_cooldown_ms as EpochMs,
                reason: failure.kind.label(),
                whole_key: false,
            }],
        ),
        // Too large for this route, or nothing said to this prompt: this request moves on, and
        // nothing cools for the others (their requests are other sizes, other prompts).
        FailureKind::TooLarge | FailureKind::EmptyCompletion => (Decision::NextRoute, vec![]),
    }
}

/// A 429: the window its adapter says is spent decides how long the key rests, the provider's
/// hint (its own reset) when it gave one, else when that window turns.
fn rate_limited(
    failure: &UpstreamFailure,
    tries: &mut RouteTries,
    j: &Judgement<'_>,
) -> (Decision, Vec<Effect>) {
    let s = j.settings;
    let whole_key = failure.spent.is_some_and(|spent| spent.whole_key);
    let cool = |until_ms: EpochMs, reason: &'static str| {
        (
            Decision::NextKey,
            vec![Effect::CoolKey {
                until_ms,
                reason,
                whole_key,
            }],
        )
    };
    let hint = failure.rate.wait_hint_ms(true);
    let window = failure.spent.map(|Spent { window, .. }| window);
    match (window, hint) {
        // Waiting does not help: the model is outside this key's tier. The longest rest there
        // is (a health reset, or a re-probe after it, brings the route back).
        (Some(SpentWindow::NotInTier), _) => cool(
            j.now
                .saturating_add(s.max_cooldown_s.saturating_mul(1000) as EpochMs),
            SpentWindow::NotInTier.reason(),
        ),
        (_, Some(wait)) if wait <= s.near_reset_ms && !tries.near_reset_waited => {
            tries.near_reset_waited = true;
            (Decision::RetrySame { after_ms: wait }, vec![])
        }
        (window, Some(wait)) => cool(
            j.now + wait.max(1) as EpochMs,
            match window {
                Some(window) => window.reason(),
                None => "rate_limited",
            },
        ),
        // A spent day or month without a reset hint rests until that window turns.
        (Some(SpentWindow::Day), None) => cool(j.next_day_reset_ms, SpentWindow::Day.reason()),
        (Some(SpentWindow::Month), None) => {
            cool(j.next_month_reset_ms, SpentWindow::Month.reason())
        }
        (Some(SpentWindow::Minute) | None, None) => {
            tries.hintless_429s += 1;
            if tries.hintless_429s < s.hintless_429_tries {
                let backoff = s.retry_pause_ms << (tries.hintless_429s - 1).min(8);
                (
                    Decision::RetrySame {
                        after_ms: jittered(backoff, j.jitter),
                    },
                    vec![],
                )
            } else {
                (Decision::NextKey, vec![Effect::EscalateKey])
            }
        }
    }
}

/// No learned window is smaller than this.
const MIN_LEARNED_WINDOW: u64 = 1_024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, Settings};
    use crate::providers::RateLimitInfo;

    fn settings() -> RoutingSettings {
        Settings::load(&ConfigSource::default()).unwrap().routing
    }

    fn judge<'a>(s: &'a RoutingSettings) -> Judgement<'a> {
        Judgement {
            settings: s,
            now: 1_000,
            jitter: 0.5,
            needed_tokens: 5_000,
            window_tokens: 8_192,
            next_day_reset_ms: 86_400_000,
            next_month_reset_ms: 30 * 86_400_000,
        }
    }

    fn rate_limited(retry_after_ms: Option<u64>) -> UpstreamFailure {
        UpstreamFailure {
            rate: RateLimitInfo {
                retry_after_ms,
                ..Default::default()
            },
            ..UpstreamFailure::new(FailureKind::RateLimited, "slow down")
        }
    }

    #[test]
    fn a_near_reset_is_waited_for_once_then_the_key_cools() {
        let s = settings();
        let mut tries = RouteTries::default();
        let (d, e) = decide(&rate_limited(Some(1_000)), &mut tries, &judge(&s));
        assert_eq!(d, Decision::RetrySame { after_ms: 1_000 });
        assert!(e.is_empty());
        let (d, e) = decide(&rate_limited(Some(1_000)), &mut tries, &judge(&s));
        assert_eq!(d, Decision::NextKey);
        assert_eq!(
            e,
            vec![Effect::CoolKey {
                until_ms: 2_000,
                reason: "rate_limited",
                whole_key: false
            }]
        );
    }

    #[test]
    fn a_far_reset_moves_on_at_once_and_cools_until_the_reset() {
        let s = settings();
        let (d, e) = decide(
            &rate_limited(Some(30_000)),
            &mut RouteTries::default(),
            &judge(&s),
        );
        assert_eq!(d, Decision::NextKey);
        assert_eq!(
            e,
            vec![Effect::CoolKey {
                until_ms: 31_000,
                reason: "rate_limited",
                whole_key: false
            }]
        );
    }

    #[test]
    fn hintless_429s_back_off_then_escalate() {
        let s = settings();
        let mut tries = RouteTries::default();
        for _ in 1..s.hintless_429_tries {
            let (d, _) = decide(&rate_limited(None), &mut tries, &judge(&s));
            assert!(matches!(d, Decision::RetrySame { .. }));
        }
        let (d, e) = decide(&rate_limited(None), &mut tries, &judge(&s));
        assert_eq!((d, e), (Decision::NextKey, vec![Effect::EscalateKey]));
    }

    fn spent(window: SpentWindow, whole_key: bool, retry_after_ms: Option<u64>) -> UpstreamFailure {
        UpstreamFailure {
            spent: Some(Spent { window, whole_key }),
            ..rate_limited(retry_after_ms)
        }
    }

    #[test]
    fn a_daily_refusal_rests_until_the_day_resets_while_a_minute_one_does_not() {
        let s = settings();
        let (d, e) = decide(
            &spent(SpentWindow::Day, false, None),
            &mut RouteTries::default(),
            &judge(&s),
        );
        assert_eq!(d, Decision::NextKey);
        assert_eq!(
            e,
            vec![Effect::CoolKey {
                until_ms: 86_400_000,
                reason: "daily_quota",
                whole_key: false
            }]
        );
        let (d, e) = decide(
            &spent(SpentWindow::Minute, false, None),
            &mut RouteTries::default(),
            &judge(&s),
        );
        assert!(
            matches!(d, Decision::RetrySame { .. }),
            "a short backoff, not a day"
        );
        assert!(e.is_empty());
    }

    #[test]
    fn a_spent_day_with_the_provider_s_own_reset_rests_exactly_until_it() {
        let s = settings();
        let (d, e) = decide(
            &spent(SpentWindow::Day, true, Some(3_600_000)),
            &mut RouteTries::default(),
            &judge(&s),
        );
        assert_eq!(d, Decision::NextKey);
        assert_eq!(
            e,
            vec![Effect::CoolKey {
                until_ms: 3_601_000,
                reason: "daily_quota",
                whole_key: true
            }]
        );
    }

    #[test]
    fn a_spent_month_rests_until_the_month_turns() {
        let s = settings();
        let (_, e) = decide(
            &spent(SpentWindow::Month, true, None),
            &mut RouteTries::default(),
            &judge(&s),
        );
        assert_eq!(
            e,
            vec![Effect::CoolKey {
                until_ms: 30 * 86_400_000,
                reason: "monthly_quota",
                whole_key: true
            }]
        );
    }

    #[test]
    fn a_model_outside_the_key_s_tier_rests_the_longest_whatever_delay_came_with_it() {
        let s = settings();
        let (d, e) = decide(
            &spent(SpentWindow::NotInTier, false, Some(1_000)),
            &mut RouteTries::default(),
            &judge(&s),
        );
        assert_eq!(
            d,
            Decision::NextKey,
            "never the short wait on the same route"
        );
        assert_eq!(
            e,
            vec![Effect::CoolKey {
                until_ms: 1_000 + (s.max_cooldown_s * 1000) as EpochMs,
                reason: "not_in_tier",
                whole_key: false
            }]
        );
    }

    #[test]
    fn a_single_5xx_is_retried_once_then_the_route_is_left() {
        let s = settings();
        let mut tries = RouteTries::default();
        let failure = UpstreamFailure::new(FailureKind::Server, "boom");
        assert!(matches!(
            decide(&failure, &mut tries, &judge(&s)).0,
            Decision::RetrySame { .. }
        ));
        assert_eq!(
            decide(&failure, &mut tries, &judge(&s)).0,
            Decision::NextRoute
        );
    }

    #[test]
    fn policy_refusals_and_plain_4xx_go_to_the_client() {
        let s = settings();
        for kind in [FailureKind::ContentPolicy, FailureKind::ClientError] {
            let (d, e) = decide(
                &UpstreamFailure::new(kind, "no"),
                &mut RouteTries::default(),
                &judge(&s),
            );
            assert_eq!((d, e), (Decision::ReturnToClient, vec![]));
        }
    }

    fn context_refusal(stated_window: Option<u64>) -> UpstreamFailure {
        UpstreamFailure {
            stated_window,
            ..UpstreamFailure::new(FailureKind::ContextLength, "too long")
        }
    }

    #[test]
    fn a_context_refusal_learns_the_stated_window() {
        let s = settings();
        let (d, e) = decide(
            &context_refusal(Some(4096)),
            &mut RouteTries::default(),
            &judge(&s),
        );
        assert_eq!(e, vec![Effect::LearnWindow { tokens: 4096 }]);
        assert_eq!(d, Decision::LargerWindow { than_tokens: 8_192 });
    }

    #[test]
    fn an_implausible_or_unstated_window_teaches_nothing_but_the_request_still_moves_on() {
        let s = settings();
        let small = Judgement {
            needed_tokens: 50,
            ..judge(&s)
        };
        for (failure, j) in [
            (context_refusal(Some(1)), judge(&s)),
            (context_refusal(Some(1000)), judge(&s)),
            (context_refusal(Some(8_192)), judge(&s)),
            (context_refusal(Some(100_000)), judge(&s)),
            (context_refusal(None), judge(&s)),
            (context_refusal(Some(4096)), small),
        ] {
            let (d, e) = decide(&failure, &mut RouteTries::default(), &j);
            assert_eq!(d, Decision::LargerWindow { than_tokens: 8_192 });
            assert!(e.is_empty(), "{:?} taught {e:?}", failure.stated_window);
        }
    }

    #[test]
    fn an_empty_answer_or_a_413_moves_this_request_on_and_cools_nothing() {
        let s = settings();
        for kind in [FailureKind::EmptyCompletion, FailureKind::TooLarge] {
            let (d, e) = decide(
                &UpstreamFailure::new(kind, "no"),
                &mut RouteTries::default(),
                &judge(&s),
            );
            assert_eq!((d, e), (Decision::NextRoute, vec![]));
        }
    }
}
