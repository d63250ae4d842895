//! The immutable view of the catalog the hot path reads; replaced whole when the database changes.

use super::{Provider, Route};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Routes in rank order with the providers that serve them.
#[derive(Debug, Default)]
pub struct CatalogSnapshot {
    /// The catalog version this was loaded at.
    pub version: i64,
    /// All routes, enabled or not, ordered by rank then id.
    pub routes: Vec<Arc<Route>>,
    pub providers: BTreeMap<String, Arc<Provider>>,
    /// Every name a route answers to (id, upstream id, display name, aliases), lowercased, to the
    /// route ids in rank order.
    names: HashMap<String, Vec<usize>>,
}

/// How a requested model name matched the catalog.
#[derive(Debug, PartialEq, Eq)]
pub enum ModelMatch<'a> {
    /// One of the `auto` modes (or no model at all).
    Auto,
    /// Positions in `routes` of the routes answering to the name, in rank order (may be disabled).
    Routes(&'a [usize]),
    Unknown,
}

impl CatalogSnapshot {
    pub fn new(
        version: i64,
        mut routes: Vec<Route>,
        providers: BTreeMap<String, Provider>,
    ) -> Self {
        routes.sort_by(|a, b| {
            a.rank
                .cmp(&b.rank)
                .then_with(|| a.route_id.cmp(&b.route_id))
        });
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        for (position, route) in routes.iter().enumerate() {
            let mut own: Vec<String> =
                [&route.route_id, &route.upstream_model, &route.display_name]
                    .into_iter()
                    .chain(&route.aliases)
                    .map(|name| name.to_lowercase())
                    .collect();
            own.sort();
            own.dedup();
            for name in own {
                names.entry(name).or_default().push(position);
            }
        }
        Self {
            version,
            routes: routes.into_iter().map(Arc::new).collect(),
            providers: providers
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            names,
        }
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.get(name)
    }

    /// Enabled routes whose provider can be called, in rank order.
    pub fn servable(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes
            .iter()
            .filter(|r| r.enabled && self.provider(&r.provider).is_some_and(|p| p.usable()))
    }

    /// Matches a route id, an upstream model id or a display name (case-insensitive for names).
    pub fn match_model(&self, requested: &str) -> ModelMatch<'_> {
        let requested = requested.trim();
        if requested.is_empty() || requested.starts_with("auto") && is_auto_mode(requested) {
            return ModelMatch::Auto;
        }
        match self.names.get(&requested.to_lowercase()) {
            Some(positions) => ModelMatch::Routes(positions),
            None => ModelMatch::Unknown,
        }
    }

    /// Environment variables that would make some route servable (for the 503 message).
    pub fn missing_key_vars(&self) -> Vec<String> {
        let mut vars: Vec<String> = self
            .providers
            .values()
            .filter(|p| !p.usable())
            .flat_map(|p| {
                let key = (p.keys.is_empty() && !p.keyless).then(|| p.key_env.first().cloned());
                key.flatten()
                    .into_iter()
                    .chain(p.missing_params.iter().cloned())
            })
            .collect();
        vars.sort();
        vars.dedup();
        vars
    }
}

/// The routing modes a client can name.
pub fn is_auto_mode(model: &str) -> bool {
    matches!(model, "auto" | "auto-fast" | "auto-balanced")
}
