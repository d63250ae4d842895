//! The attempt driver: walks the plan route by route and key by key, applies the failure table,
//! and keeps the budget, the deadline and the trail.

use super::error::{RoutingError, refills};
use super::plan::{Candidate, KEYLESS_ID, usable_keys};
use super::policy::{Decision, Effect, Judgement, RouteTries, decide};
use super::sessions::SessionKey;
use super::stats::RouteStats;
use super::trail::Trail;
use crate::catalog::ApiKey;
use crate::config::RoutingSettings;
use crate::health::{HealthBoard, HealthState};
use crate::metrics as m;
use crate::providers::{FailureKind, UpstreamFailure};
use crate::quota::window::{DAY_MS, day_window_start, next_month_start};
use crate::store::StoreWriter;
use crate::time::EpochMs;
use std::time::Instant;

/// One route with one key: what a single upstream call goes to.
#[derive(Clone, Debug)]
pub struct Target {
    pub candidate: Candidate,
    pub key: Option<ApiKey>,
}

impl Target {
    pub fn route_id(&self) -> &str {
        &self.candidate.route.route_id
    }

    pub fn provider(&self) -> &str {
        &self.candidate.provider.name
    }

    pub fn key_id(&self) -> &str {
        self.key.as_ref().map_or(KEYLESS_ID, |k| k.id.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Same,
    OtherKey,
    OtherRoute,
}

struct Current {
    candidate: Candidate,
    keys: Vec<Option<ApiKey>>,
    key_index: usize,
    tries: RouteTries,
    next: Next,
    /// Keys were put in headroom order (done once per route).
    ordered: bool,
}

/// Where the request stands among its candidates.
pub struct Attempts {
    candidates: Vec<Candidate>,
    next_index: usize,
    current: Option<Current>,
    pub trail: Trail,
    budget: u32,
    pub deadline: Instant,
    /// After a context-length refusal: only routes with a larger window.
    min_window: Option<u64>,
    needed_tokens: u64,
    only_rate_limits: bool,
    /// The conversation this request continues, when it is one.
    pub session: Option<SessionKey>,
    /// A low-priority request: routes whose daily window is below this share are kept from it.
    pub low_priority_reserve: Option<f64>,
    /// Providers whose routes were kept from this low-priority request, and when their day turns.
    held_back: Vec<(String, EpochMs)>,
}

/// What the engine shares with the driver when judging a failure.
pub struct Context<'a> {
    pub health: &'a HealthBoard,
    pub writer: &'a StoreWriter,
    pub settings: &'a RoutingSettings,
    pub stats: &'a RouteStats,
}

impl Attempts {
    pub fn new(
        candidates: Vec<Candidate>,
        settings: &RoutingSettings,
        needed_tokens: u64,
        started: Instant,
    ) -> Self {
        Self {
            candidates,
            next_index: 0,
            current: None,
            trail: Trail::default(),
            budget: settings.attempt_budget,
            deadline: started + std::time::Duration::from_millis(settings.deadline_ms),
            min_window: None,
            needed_tokens,
            only_rate_limits: true,
            session: None,
            low_priority_reserve: None,
            held_back: Vec::new(),
        }
    }

    pub fn attempts(&self) -> u32 {
        self.trail.attempts() as u32
    }

    /// The next route and key to call, or `None` when the plan, the budget or the deadline is spent.
    pub fn next_target(&mut self, health: &HealthBoard, now: EpochMs) -> Option<Target> {
        loop {
            if self.attempts() >= self.budget || Instant::now() >= self.deadline {
                return None;
            }
            if let Some(current) = &mut self.current {
                match current.next {
                    Next::Same => {
                        return Some(Target {
                            candidate: current.candidate.clone(),
                            key: current.keys[current.key_index].clone(),
                        });
                    }
                    Next::OtherKey => {
                        current.key_index += 1;
                        current.tries = RouteTries::default();
                        let route_id = current.candidate.route.route_id.clone();
                        let provider = current.candidate.provider.name.clone();
                        while let Some(key) = current.keys.get(current.key_index) {
                            let key_id = key.as_ref().map_or(KEYLESS_ID, |k| k.id.as_str());
                            let free = !health.key_invalid(&provider, key_id, now)
                                && health
                                    .key_cooling_until(&provider, key_id, &route_id, now)
                                    .is_none();
                            if free {
                                current.next = Next::Same;
                                break;
                            }
                            current.key_index += 1;
                        }
                        if current.next != Next::Same {
                            self.current = None;
                        }
                        continue;
                    }
                    Next::OtherRoute => {
                        self.current = None;
                        continue;
                    }
                }
            }
            let candidate = self.candidates.get(self.next_index)?.clone();
            self.next_index += 1;
            if self
                .min_window
                .is_some_and(|min| candidate.window_tokens <= min)
            {
                continue;
            }
            // Another request may have cooled this route since the plan was made.
            let view = health.view();
            if view.glance(&candidate.route.route_id, now).state == HealthState::Cooling {
                continue;
            }
            let (keys, _) = usable_keys(&candidate.provider, &candidate.route.route_id, &view, now);
            if keys.is_empty() {
                continue;
            }
            let keys = keys.into_iter().map(|k| k.cloned()).collect();
            self.current = Some(Current {
                candidate,
                keys,
                key_index: 0,
                tries: RouteTries::default(),
                next: Next::Same,
                ordered: false,
            });
        }
    }

    /// The key ids of a route just chosen, once, so the caller can put the roomiest first.
    pub fn fresh_route_keys(&mut self) -> Vec<String> {
        match &mut self.current {
            Some(current) if !current.ordered && current.key_index == 0 => {
                current.ordered = true;
                current
                    .keys
                    .iter()
                    .map(|k| k.as_ref().map_or(KEYLESS_ID.to_string(), |k| k.id.clone()))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Makes the key at `index` the one tried first on the current route.
    pub fn prefer_key(&mut self, index: usize) {
        if let Some(current) = &mut self.current
            && index < current.keys.len()
        {
            current.keys.swap(0, index);
        }
    }

    /// The key had no quota left: no call was made; go on to the route's next key.
    pub fn quota_refused(&mut self) {
        if let Some(current) = &mut self.current {
            current.next = Next::OtherKey;
        }
    }

    /// The key's route is kept for requests of higher priority (its daily window is in the
    /// reserve) until `day_turns_ms`: no call was made; go on to the route's next key.
    pub fn held_back(&mut self, provider: &str, day_turns_ms: EpochMs) {
        self.held_back.push((provider.to_string(), day_turns_ms));
        self.quota_refused();
    }

    /// Records a success on the trail.
    pub fn succeeded(&mut self, target: &Target) {
        self.trail.push(target.route_id(), "ok");
        metrics::counter!(m::UPSTREAM_ATTEMPTS_TOTAL, "provider" => target.provider().to_string(),
            "route" => target.route_id().to_string(), "result" => "ok")
        .increment(1);
    }

    /// Judges a failed attempt. `Ok(Some(ms))`: wait that long before the next call (same route);
    /// `Ok(None)`: go on at once; `Err`: the client gets this answer now.
    pub fn failed(
        &mut self,
        target: &Target,
        failure: &UpstreamFailure,
        ctx: &Context<'_>,
        now: EpochMs,
        mid_stream: bool,
    ) -> Result<Option<u64>, RoutingError> {
        let label = failure.kind.label();
        self.trail.push(target.route_id(), label);
        self.only_rate_limits &= failure.kind == FailureKind::RateLimited;
        if failure.kind != FailureKind::RateLimited {
            ctx.stats.failure(target.route_id());
        }
        metrics::counter!(m::UPSTREAM_ATTEMPTS_TOTAL, "provider" => target.provider().to_string(),
            "route" => target.route_id().to_string(), "result" => label)
        .increment(1);
        tracing::info!(route = target.route_id(), result = label, message = %failure.message, "upstream attempt failed");
        let Some(current) = self.current.as_mut() else {
            return Ok(None);
        };
        let judgement = Judgement {
            settings: ctx.settings,
            now,
            jitter: rand::random::<f64>(),
            needed_tokens: self.needed_tokens,
            window_tokens: current.candidate.window_tokens,
            next_day_reset_ms: day_window_start(now, current.candidate.provider.day_reset_minute)
                + DAY_MS,
            next_month_reset_ms: next_month_start(now),
        };
        let (decision, effects) = decide(failure, &mut current.tries, &judgement);
        apply(effects, target, ctx, now, failure);
        let moving_on = |reason: &'static str| {
            metrics::counter!(m::FALLBACKS_TOTAL, "reason" => reason).increment(1);
        };
        match decision {
            Decision::RetrySame { after_ms } => {
                let fits =
                    Instant::now() + std::time::Duration::from_millis(after_ms) < self.deadline;
                if fits {
                    current.next = Next::Same;
                    Ok(Some(after_ms))
                } else {
                    current.next = Next::OtherRoute;
                    moving_on(label);
                    Ok(None)
                }
            }
            Decision::NextKey => {
                current.next = Next::OtherKey;
                moving_on(label);
                Ok(None)
            }
            Decision::NextRoute => {
                current.next = Next::OtherRoute;
                moving_on(label);
                Ok(None)
            }
            Decision::LargerWindow { than_tokens } => {
                self.min_window = Some(self.min_window.map_or(than_tokens, |m| m.max(than_tokens)));
                current.next = Next::OtherRoute;
                moving_on(label);
                Ok(None)
            }
            // Mid-stream the client already has an answer started: a refusal only ends this route.
            Decision::ReturnToClient if mid_stream => {
                current.next = Next::OtherRoute;
                Ok(None)
            }
            Decision::ReturnToClient => Err(RoutingError::UpstreamRejected {
                status: failure.status.unwrap_or(400),
                message: failure.message.clone(),
                body: failure.body.clone(),
                trail: self.trail.clone(),
            }),
        }
    }

    /// Makes the current route the last one tried (a stream rescue leaves it for the next).
    pub fn leave_current_route(&mut self) {
        if let Some(current) = &mut self.current {
            current.next = Next::OtherRoute;
        }
    }

    /// Why the request ends without an answer, once `next_target` said no more.
    pub fn into_error(self, health: &HealthBoard, now: EpochMs) -> RoutingError {
        let view = health.view();
        let route_cooling_until = |route_id: &str| {
            let glance = view.glance(route_id, now);
            (glance.state == HealthState::Cooling).then_some(glance.cooldown_until_ms)
        };
        let returns: Vec<(String, EpochMs)> = self
            .candidates
            .iter()
            .filter_map(|c| {
                let route_until = route_cooling_until(&c.route.route_id);
                let (keys, key_until) = usable_keys(&c.provider, &c.route.route_id, &view, now);
                let key_until = if keys.is_empty() { key_until } else { None };
                let back = route_until.into_iter().chain(key_until).max()?;
                Some((c.provider.name.clone(), back))
            })
            .collect();
        let soonest = returns.iter().map(|(_, at)| *at).min();
        let everything_cooling = self.candidates.iter().all(|c| {
            let (keys, _) = usable_keys(&c.provider, &c.route.route_id, &view, now);
            keys.is_empty() || route_cooling_until(&c.route.route_id).is_some()
        });
        drop(view);
        if self.min_window.is_some() && self.only_rate_limits_or_context() {
            return RoutingError::ContextLengthExceeded {
                needed_tokens: self.needed_tokens,
                trail: self.trail,
            };
        }
        // Nothing called, and some route kept for higher priorities: this request's quota is
        // spent for today, back when the first of those days turns (or a cooldown ends).
        if self.attempts() == 0
            && let Some(day_turns) = self.held_back.iter().map(|(_, at)| *at).min()
        {
            let back = soonest.map_or(day_turns, |s| s.min(day_turns));
            return RoutingError::QuotaExhausted {
                retry_after_ms: (back - now).max(0) as u64,
                refills: refills(returns.into_iter().chain(self.held_back)),
                trail: self.trail,
            };
        }
        if (self.attempts() == 0 || self.only_rate_limits) && everything_cooling {
            return RoutingError::QuotaExhausted {
                retry_after_ms: soonest.map_or(1_000, |until| (until - now).max(0) as u64),
                refills: refills(returns),
                trail: self.trail,
            };
        }
        RoutingError::AllRoutesFailed { trail: self.trail }
    }

    fn only_rate_limits_or_context(&self) -> bool {
        self.trail
            .records()
            .iter()
            .all(|a| a.result == "context_length" || a.result == "429")
    }
}

fn apply(
    effects: Vec<Effect>,
    target: &Target,
    ctx: &Context<'_>,
    now: EpochMs,
    failure: &UpstreamFailure,
) {
    let (provider, key_id, route_id) = (target.provider(), target.key_id(), target.route_id());
    for effect in effects {
        let change = match effect {
            Effect::CoolKey {
                until_ms,
                reason,
                whole_key,
            } => {
                let on = if whole_key { "*" } else { route_id };
                ctx.health
                    .cool_key(provider, key_id, on, until_ms, reason, now)
            }
            Effect::EscalateKey => {
                ctx.health
                    .escalate_key(provider, key_id, route_id, now, ctx.settings)
            }
            Effect::RouteFailure(kind) => {
                ctx.health
                    .record_failure(route_id, kind, &failure.message, now, ctx.settings)
            }
            Effect::InvalidKey { status } => {
                ctx.health
                    .mark_key_invalid(provider, key_id, status, now, ctx.settings)
            }
            Effect::LearnWindow { tokens } => ctx.health.learn_context_window(route_id, tokens),
        };
        ctx.writer.health(change);
    }
}
