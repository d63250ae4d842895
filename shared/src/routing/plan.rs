//! Candidates for one request: the servable routes in order, and why the others were skipped.

use super::error::RoutingError;
use super::trail::Trail;
use crate::catalog::{
    ApiKey, CatalogSnapshot, EMBEDDINGS_TAG, ModelMatch, Provider, Route, data_use,
};
use crate::health::{HealthBoard, HealthState, HealthView};
use crate::time::EpochMs;
use std::sync::Arc;

/// The key id used for cooldowns of a provider that needs no key.
pub const KEYLESS_ID: &str = "-";

#[derive(Clone, Debug)]
pub struct Candidate {
    pub route: Arc<Route>,
    pub provider: Arc<Provider>,
    /// The smaller of the declared window and the one learned from a refusal.
    pub window_tokens: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    Disabled,
    NoKey,
    Cooling {
        until_ms: EpochMs,
        provider: String,
    },
    Outdated,
    ContextTooSmall,
    /// The route lacks a tag the request needs (`tools`, `vision`, `json`, `web-search`), or
    /// (`chat`) it is an embeddings route.
    Lacks(&'static str),
    /// The route has a property the request excludes (`trains-on-prompts`, a tag).
    Excluded,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub candidates: Vec<Candidate>,
    /// Why routes were passed over (for the error when nothing is left).
    pub skipped: Vec<Skip>,
}

/// What the request asks of the plan.
pub struct PlanInput<'a> {
    pub model: &'a str,
    pub strict: bool,
    pub prompt_tokens: u64,
    pub max_tokens: Option<u64>,
    /// Tags a route must carry to be a candidate.
    pub required_tags: &'a [&'static str],
    /// Properties a route must not have (`routing.exclude` and `X-FreeRouter-Exclude`).
    pub excluded: &'a [String],
}

/// Candidates kept per request: twice the default attempt budget, few enough that a catalog of
/// thousands of routes costs no more to plan than one of dozens.
pub const MAX_CANDIDATES: usize = 16;

/// The keys of a provider that may be used on a route now, and when the next cooling one returns.
pub fn usable_keys<'p>(
    provider: &'p Provider,
    route_id: &str,
    health: &HealthView<'_>,
    now: EpochMs,
) -> (Vec<Option<&'p ApiKey>>, Option<EpochMs>) {
    if provider.keys.is_empty() {
        if !provider.keyless {
            return (Vec::new(), None);
        }
        return match health.key_cooling_until(&provider.name, KEYLESS_ID, route_id, now) {
            Some(until) => (Vec::new(), Some(until)),
            None => (vec![None], None),
        };
    }
    let mut usable = Vec::new();
    let mut soonest: Option<EpochMs> = None;
    for key in &provider.keys {
        if health.key_invalid(&provider.name, &key.id, now) {
            continue;
        }
        match health.key_cooling_until(&provider.name, &key.id, route_id, now) {
            Some(until) => soonest = Some(soonest.map_or(until, |s| s.min(until))),
            None => usable.push(Some(key)),
        }
    }
    (usable, soonest)
}

/// Orders the catalog for this request; fails when nothing can be tried.
pub fn plan(
    snapshot: &CatalogSnapshot,
    health: &HealthBoard,
    input: &PlanInput<'_>,
    now: EpochMs,
) -> Result<Plan, RoutingError> {
    let preferred: &[usize] = match snapshot.match_model(input.model) {
        ModelMatch::Routes(positions) => positions,
        ModelMatch::Auto => &[],
        ModelMatch::Unknown if input.strict => {
            return Err(RoutingError::ModelNotFound {
                model: input.model.to_string(),
            });
        }
        ModelMatch::Unknown => &[],
    };
    if input.strict && !preferred.is_empty() {
        let any_enabled = preferred.iter().any(|&i| snapshot.routes[i].enabled);
        if !any_enabled {
            return Err(RoutingError::ModelNotFound {
                model: input.model.to_string(),
            });
        }
    }
    let mut is_preferred = vec![
        false;
        if preferred.is_empty() {
            0
        } else {
            snapshot.routes.len()
        }
    ];
    for &i in preferred {
        is_preferred[i] = true;
    }
    let rest = snapshot
        .routes
        .iter()
        .enumerate()
        .filter(|(i, _)| !input.strict && !is_preferred.get(*i).copied().unwrap_or(false))
        .map(|(_, r)| r);
    let ordered = preferred.iter().map(|&i| &snapshot.routes[i]).chain(rest);
    // What the request needs of a window: the prompt, and the output as the route will be asked
    // for it (clamped to its maximum output; `routing::output`).
    let needed_on = |route: &Route| {
        input.prompt_tokens
            + super::output::clamped_max_tokens(input.max_tokens, route).unwrap_or(0)
    };
    let needed = input.prompt_tokens + input.max_tokens.unwrap_or(0);
    let mut plan = Plan::default();
    let mut slow = Vec::new();
    let health = health.view();
    for route in ordered {
        if plan.candidates.len() + slow.len() >= MAX_CANDIDATES {
            break;
        }
        let skip = |plan: &mut Plan, why| plan.skipped.push(why);
        if route.has_tag(EMBEDDINGS_TAG) {
            // An embedding model answers no chat request; `/v1/embeddings` plans its own.
            skip(&mut plan, Skip::Lacks("chat"));
            continue;
        }
        if !route.enabled {
            skip(&mut plan, Skip::Disabled);
            continue;
        }
        if let Some(tag) = input.required_tags.iter().find(|t| !route.has_tag(t)) {
            skip(&mut plan, Skip::Lacks(tag));
            continue;
        }
        let Some(provider) = snapshot.provider(&route.provider).filter(|p| p.usable()) else {
            skip(&mut plan, Skip::NoKey);
            continue;
        };
        if input
            .excluded
            .iter()
            .any(|name| data_use::has_property(route, provider, name))
        {
            skip(&mut plan, Skip::Excluded);
            continue;
        }
        let glance = health.glance(&route.route_id, now);
        let state = glance.state;
        match state {
            HealthState::Cooling => {
                skip(
                    &mut plan,
                    Skip::Cooling {
                        until_ms: glance.cooldown_until_ms,
                        provider: route.provider.clone(),
                    },
                );
                continue;
            }
            HealthState::PotentiallyOutdated => {
                skip(&mut plan, Skip::Outdated);
                continue;
            }
            _ => {}
        }
        let window_tokens = glance
            .learned_context_window
            .map_or(route.context_window_tokens, |w| {
                w.min(route.context_window_tokens)
            });
        if needed_on(route) > window_tokens {
            skip(&mut plan, Skip::ContextTooSmall);
            continue;
        }
        let (keys, soonest) = usable_keys(provider, &route.route_id, &health, now);
        if keys.is_empty() {
            match soonest {
                Some(until_ms) => skip(
                    &mut plan,
                    Skip::Cooling {
                        until_ms,
                        provider: route.provider.clone(),
                    },
                ),
                None => skip(&mut plan, Skip::NoKey),
            }
            continue;
        }
        let candidate = Candidate {
            route: route.clone(),
            provider: provider.clone(),
            window_tokens,
        };
        if state == HealthState::TooSlow {
            slow.push(candidate);
        } else {
            plan.candidates.push(candidate);
        }
    }
    plan.candidates.extend(slow);
    if plan.candidates.is_empty() {
        return Err(empty_plan_error(snapshot, &plan, input, needed, now));
    }
    Ok(plan)
}

fn empty_plan_error(
    snapshot: &CatalogSnapshot,
    plan: &Plan,
    input: &PlanInput<'_>,
    needed: u64,
    now: EpochMs,
) -> RoutingError {
    let soonest = plan
        .skipped
        .iter()
        .filter_map(|s| match s {
            Skip::Cooling { until_ms, .. } => Some(*until_ms),
            _ => None,
        })
        .min();
    if let Some(until) = soonest {
        return RoutingError::QuotaExhausted {
            retry_after_ms: (until - now).max(0) as u64,
            refills: super::error::refills(plan.skipped.iter().filter_map(|s| match s {
                Skip::Cooling { until_ms, provider } => Some((provider.clone(), *until_ms)),
                _ => None,
            })),
            trail: Trail::default(),
        };
    }
    if plan.skipped.contains(&Skip::ContextTooSmall) {
        return RoutingError::ContextLengthExceeded {
            needed_tokens: needed,
            trail: Trail::default(),
        };
    }
    let mut lacking: Vec<&'static str> = plan
        .skipped
        .iter()
        .filter_map(|s| match s {
            Skip::Lacks(tag) => Some(*tag),
            _ => None,
        })
        .collect();
    if lacking.is_empty() && plan.skipped.contains(&Skip::Excluded) {
        let tags = input
            .excluded
            .iter()
            .map(|name| format!("without {name}"))
            .collect();
        return RoutingError::NoCapableRoute { tags };
    }
    if !lacking.is_empty() && snapshot.servable().next().is_some() {
        lacking.sort();
        lacking.dedup();
        return RoutingError::NoCapableRoute {
            tags: lacking.into_iter().map(str::to_string).collect(),
        };
    }
    if input.strict {
        return RoutingError::ModelNotFound {
            model: input.model.to_string(),
        };
    }
    RoutingError::NoRoutesAvailable {
        missing_vars: snapshot.missing_key_vars(),
    }
}
