//! The built-in default catalog, compiled in from `shared/catalog/default.toml`.

use super::route::RouteSeed;
use crate::config::Limits;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const DEFAULT_CATALOG: &str = include_str!("../../catalog/default.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinProvider {
    pub adapter: String,
    pub base_url: String,
    /// Variable overriding the base URL (Ollama's `OLLAMA_BASE_URL`).
    pub base_url_env: Option<String>,
    #[serde(default)]
    pub key_env: Vec<String>,
    /// Serves without a key (a local server); used when its base URL variable is set.
    #[serde(default)]
    pub keyless: bool,
    pub limits: Option<Limits>,
    pub day_reset: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinRegistry {
    pub providers: BTreeMap<String, BuiltinProvider>,
    pub routes: Vec<RouteSeed>,
}

/// The parsed built-in catalog. The data file is checked by a unit test, so parsing cannot fail at run time.
pub fn registry() -> &'static BuiltinRegistry {
    static REGISTRY: OnceLock<BuiltinRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        toml::from_str(DEFAULT_CATALOG).expect("the built-in catalog is checked by its unit test")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_parses_and_every_route_names_a_known_provider() {
        let registry: BuiltinRegistry = toml::from_str(DEFAULT_CATALOG).unwrap();
        assert!(registry.routes.len() >= 5);
        for route in &registry.routes {
            assert!(
                registry.providers.contains_key(&route.provider),
                "{}",
                route.model
            );
            assert!(route.context_window.unwrap_or(0) > 0, "{}", route.model);
        }
        let mut ranks: Vec<_> = registry.routes.iter().map(|r| r.rank).collect();
        ranks.dedup();
        assert_eq!(ranks.len(), registry.routes.len(), "ranks are distinct");
    }
}
