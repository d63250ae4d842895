//! Which routes may serve an embeddings request: those of the one embedding model it names — or
//! of the default one for `auto` — on every provider serving that same model, never a route of
//! another model, however healthy: vectors of two models live in different spaces, and a client
//! storing them side by side would compare the incomparable without knowing.
//!
//! Two routes serve the same model when they share an alias or their upstream model id (names
//! compared without case), directly or through other routes of the model. Display names do not
//! count: they are labels, not identities. The
//! model a name means is that of the best-ranked callable route answering to it (route id,
//! upstream id, display name or alias); `auto` means `routing.default_embedding_model`, else
//! the model of the best-ranked callable embeddings route.

use super::error::EmbeddingsError;
use crate::catalog::{
    CatalogSnapshot, DIMENSIONS_TAG, EMBEDDINGS_TAG, ModelMatch, Route, is_auto_mode,
};
use crate::health::{HealthBoard, HealthState};
use crate::routing::RoutingError;
use crate::routing::plan::{Candidate, MAX_CANDIDATES, usable_keys};
use crate::routing::trail::Trail;
use crate::time::EpochMs;
use std::sync::Arc;

/// One embedding model: its name and every route serving it, best-ranked first (enabled or not).
#[derive(Clone, Debug)]
pub struct EmbeddingModel {
    /// The name the model goes by: its first alias, else its upstream id.
    pub name: String,
    pub routes: Vec<Arc<Route>>,
}

/// Whether a route serves embeddings (and so never chat).
pub fn is_embeddings(route: &Route) -> bool {
    route.has_tag(EMBEDDINGS_TAG)
}

/// The names a route's model is known by across providers: its aliases and upstream id.
fn identity(route: &Route) -> impl Iterator<Item = String> + '_ {
    route
        .aliases
        .iter()
        .chain(std::iter::once(&route.upstream_model))
        .map(|name| name.to_lowercase())
}

/// Whether two routes serve the same model.
pub fn same_model(a: &Route, b: &Route) -> bool {
    let of_a: Vec<String> = identity(a).collect();
    identity(b).any(|name| of_a.contains(&name))
}

fn model_name(route: &Route) -> String {
    route
        .aliases
        .first()
        .unwrap_or(&route.upstream_model)
        .clone()
}

fn callable(snapshot: &CatalogSnapshot, route: &Route) -> bool {
    route.enabled
        && snapshot
            .provider(&route.provider)
            .is_some_and(|p| p.usable())
}

/// The model of `anchor`: every embeddings route serving the same model, in rank order. "Same"
/// carries over (a route sharing an alias with one that shares its upstream id with the anchor
/// serves the anchor's model too), so every name of the model gives the same routes.
fn model_of(snapshot: &CatalogSnapshot, anchor: &Route) -> EmbeddingModel {
    let embedding: Vec<&Arc<Route>> = snapshot
        .routes
        .iter()
        .filter(|r| is_embeddings(r))
        .collect();
    let mut names: Vec<String> = identity(anchor).collect();
    let mut member = vec![false; embedding.len()];
    loop {
        let mut grew = false;
        for (i, route) in embedding.iter().enumerate() {
            if !member[i] && identity(route).any(|name| names.contains(&name)) {
                member[i] = true;
                names.extend(identity(route));
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    EmbeddingModel {
        name: model_name(anchor),
        routes: embedding
            .into_iter()
            .zip(member)
            .filter(|(_, member)| *member)
            .map(|(route, _)| route.clone())
            .collect(),
    }
}

/// The callable embedding models' names, for a 404's message (at most 12).
fn known_models(snapshot: &CatalogSnapshot) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for route in snapshot.routes.iter().filter(|r| is_embeddings(r)) {
        let name = model_name(route);
        if callable(snapshot, route) && !names.contains(&name) {
            names.push(name);
        }
    }
    names.truncate(12);
    names
}

/// The model a request for `requested` is served by; `default` is
/// `routing.default_embedding_model`.
pub fn resolve(
    snapshot: &CatalogSnapshot,
    requested: &str,
    default: Option<&str>,
) -> Result<EmbeddingModel, EmbeddingsError> {
    let requested = requested.trim();
    let auto = requested.is_empty() || is_auto_mode(requested);
    let setting = default.map(str::trim).filter(|d| !d.is_empty());
    let name = match (auto, setting) {
        (true, None) => return best_ranked(snapshot),
        (true, Some(setting)) => setting,
        (false, _) => requested,
    };
    let positions: &[usize] = match snapshot.match_model(name) {
        ModelMatch::Routes(positions) => positions,
        // A setting of `auto` means what leaving it unset means.
        ModelMatch::Auto => return best_ranked(snapshot),
        ModelMatch::Unknown => &[],
    };
    let matches: Vec<&Arc<Route>> = positions
        .iter()
        .map(|&i| &snapshot.routes[i])
        .filter(|r| is_embeddings(r))
        .collect();
    let anchor = matches
        .iter()
        .find(|r| callable(snapshot, r))
        .or(matches.first());
    match anchor {
        Some(anchor) => Ok(model_of(snapshot, anchor)),
        None if auto => Err(EmbeddingsError::DefaultModelMissing {
            setting: name.to_string(),
        }),
        None if positions.is_empty() => Err(EmbeddingsError::UnknownModel {
            model: name.to_string(),
            known: known_models(snapshot),
        }),
        None => Err(EmbeddingsError::NotAnEmbeddingModel {
            model: name.to_string(),
            known: known_models(snapshot),
        }),
    }
}

/// The model of the best-ranked callable embeddings route.
fn best_ranked(snapshot: &CatalogSnapshot) -> Result<EmbeddingModel, EmbeddingsError> {
    snapshot
        .routes
        .iter()
        .find(|r| is_embeddings(r) && callable(snapshot, r))
        .map(|anchor| model_of(snapshot, anchor))
        .ok_or_else(|| EmbeddingsError::NoEmbeddingRoutes {
            missing_vars: snapshot.missing_key_vars(),
        })
}

/// The model's routes that can be tried now, best-ranked first (too-slow ones last), or why none
/// can: resting (429 with the soonest return), or not callable at all (503).
pub fn candidates(
    snapshot: &CatalogSnapshot,
    health: &HealthBoard,
    model: &EmbeddingModel,
    needs_dimensions: bool,
    now: EpochMs,
) -> Result<Vec<Candidate>, EmbeddingsError> {
    let view = health.view();
    let (mut ready, mut slow) = (Vec::new(), Vec::new());
    let mut soonest: Option<EpochMs> = None;
    let mut rest_until = |until: EpochMs| soonest = Some(soonest.map_or(until, |s| s.min(until)));
    let (mut disabled, mut outdated, mut without_dimensions) = (0, 0, 0);
    let mut missing_vars: Vec<String> = Vec::new();
    for route in &model.routes {
        if ready.len() + slow.len() >= MAX_CANDIDATES {
            break;
        }
        if !route.enabled {
            disabled += 1;
            continue;
        }
        let Some(provider) = snapshot.provider(&route.provider).filter(|p| p.usable()) else {
            if let Some(provider) = snapshot.provider(&route.provider) {
                let key = (provider.keys.is_empty() && !provider.keyless)
                    .then(|| provider.key_env.first().cloned())
                    .flatten();
                missing_vars.extend(key.into_iter().chain(provider.missing_params.clone()));
            }
            continue;
        };
        if needs_dimensions && !route.has_tag(DIMENSIONS_TAG) {
            without_dimensions += 1;
            continue;
        }
        let glance = view.glance(&route.route_id, now);
        match glance.state {
            HealthState::Cooling => {
                rest_until(glance.cooldown_until_ms);
                continue;
            }
            HealthState::PotentiallyOutdated => {
                outdated += 1;
                continue;
            }
            _ => {}
        }
        let (keys, key_back) = usable_keys(provider, &route.route_id, &view, now);
        if keys.is_empty() {
            if let Some(until) = key_back {
                rest_until(until);
            }
            continue;
        }
        let candidate = Candidate {
            route: route.clone(),
            provider: provider.clone(),
            window_tokens: glance
                .learned_context_window
                .map_or(route.context_window_tokens, |w| {
                    w.min(route.context_window_tokens)
                }),
        };
        if glance.state == HealthState::TooSlow {
            slow.push(candidate);
        } else {
            ready.push(candidate);
        }
    }
    ready.extend(slow);
    if !ready.is_empty() {
        return Ok(ready);
    }
    if let Some(until) = soonest {
        return Err(EmbeddingsError::Routing {
            model: model.name.clone(),
            error: RoutingError::QuotaExhausted {
                retry_after_ms: (until - now).max(0) as u64,
                refills: Vec::new(),
                trail: Trail::default(),
            },
        });
    }
    if without_dimensions > 0 {
        return Err(EmbeddingsError::NoDimensions {
            model: model.name.clone(),
        });
    }
    missing_vars.sort();
    missing_vars.dedup();
    let mut why = Vec::new();
    if disabled > 0 {
        why.push(format!("{disabled} of its routes disabled"));
    }
    if outdated > 0 {
        why.push(format!("{outdated} marked potentially outdated"));
    }
    if !missing_vars.is_empty() {
        why.push(format!("set {} for the others", missing_vars.join(", ")));
    }
    Err(EmbeddingsError::ModelUnavailable {
        model: model.name.clone(),
        why: if why.is_empty() {
            "it has no route".to_string()
        } else {
            why.join("; ")
        },
    })
}
