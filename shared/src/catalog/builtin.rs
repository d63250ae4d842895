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
    /// Values the adapter needs besides the key, by name, each read from an environment variable
    /// (Cloudflare's `account_id` from `CLOUDFLARE_ACCOUNT_ID`). The provider is usable only with all of them.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Headers-to-first-token limit for providers with slow first tokens.
    pub first_token_timeout_ms: Option<u64>,
    /// Counts `max_tokens` against the token window before answering (Cerebras).
    #[serde(default)]
    pub counts_max_tokens: bool,
    /// The provider's terms for this tier let it train on (or keep) prompts.
    #[serde(default)]
    pub trains_on_prompts: bool,
    /// Where that is said (a terms page, and when it was read).
    pub trains_on_prompts_source: Option<String>,
    /// Its "free" use is a trial credit that runs out: its routes rank after true free tiers.
    #[serde(default)]
    pub trial: bool,
}

/// Models a provider shut down or moved off its free tier, with why and where that is said.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffFreeTier {
    pub provider: String,
    /// Upstream ids; one ending in `*` stands for every id starting with what precedes it.
    pub models: Vec<String>,
    pub why: String,
    pub source: String,
}

impl OffFreeTier {
    fn covers(&self, provider: &str, model: &str) -> bool {
        self.provider == provider
            && self
                .models
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => model.starts_with(prefix),
                    None => model == pattern,
                })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinRegistry {
    pub providers: BTreeMap<String, BuiltinProvider>,
    pub routes: Vec<RouteSeed>,
    #[serde(default)]
    pub off_free_tier: Vec<OffFreeTier>,
}

impl BuiltinRegistry {
    /// The default routes, ranked: by explicit rank, else by score (highest first), ties in file order.
    pub fn ranked_routes(&self) -> Vec<super::Route> {
        self.ranked_routes_for(&BTreeMap::new())
    }

    /// The default routes ranked with the owner's config: a provider's `trial` there overrides
    /// the catalog's.
    pub fn ranked_routes_for(
        &self,
        overrides: &BTreeMap<String, crate::config::ProviderSettings>,
    ) -> Vec<super::Route> {
        let mut seeds: Vec<(usize, &RouteSeed)> = self.routes.iter().enumerate().collect();
        // A trial credit runs out: every true free tier ranks before it.
        let trial = |seed: &RouteSeed| {
            let own = overrides.get(&seed.provider).and_then(|p| p.trial);
            own.unwrap_or_else(|| self.providers.get(&seed.provider).is_some_and(|p| p.trial))
        };
        seeds
            .sort_by_key(|(i, seed)| (trial(seed), std::cmp::Reverse(seed.score.unwrap_or(0)), *i));
        seeds
            .into_iter()
            .enumerate()
            .map(|(position, (_, seed))| {
                seed.clone()
                    .into_route(super::Origin::Default, true, (position as i64 + 1) * 10)
            })
            .collect()
    }

    /// Why `model` on `provider` is no longer free, when the catalog knows it is not.
    pub fn off_free_tier(&self, provider: &str, model: &str) -> Option<&OffFreeTier> {
        self.off_free_tier
            .iter()
            .find(|entry| entry.covers(provider, model))
    }

    /// The default route serving `model` on `provider`, ranked as the defaults are.
    pub fn default_route(&self, provider: &str, model: &str) -> Option<super::Route> {
        // Ranking clones every route: only for a model the catalog has (discovery asks this for
        // every listed model, hundreds on OpenRouter).
        let ships = |seed: &RouteSeed| seed.provider == provider && seed.model == model;
        if !self.routes.iter().any(ships) {
            return None;
        }
        self.ranked_routes()
            .into_iter()
            .find(|route| route.provider == provider && route.upstream_model == model)
    }
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
    fn the_2026_catalog_drops_the_gone_models_and_ranks_trial_credits_after_free_tiers() {
        let registry = registry();
        let ranked = registry.ranked_routes();
        for gone in [
            "gemini-2.0-flash",
            "gemini-2.0-flash-lite",
            "gemini-2.5-pro",
        ] {
            assert!(
                registry.off_free_tier("gemini", gone).is_some(),
                "{gone} is known to be off the free tier"
            );
        }
        assert!(
            registry
                .off_free_tier("gemini", "gemini-2.5-flash")
                .is_none()
        );
        assert!(
            registry
                .off_free_tier("openrouter", "gemini-2.5-pro")
                .is_none()
        );
        for route in &ranked {
            assert!(
                registry
                    .off_free_tier(&route.provider, &route.upstream_model)
                    .is_none(),
                "{} is a default but off the free tier",
                route.route_id
            );
        }
        for new in [
            "gemini/gemini-3.5-flash",
            "openrouter/openai/gpt-oss-20b:free",
        ] {
            assert!(
                ranked.iter().any(|r| r.route_id == new),
                "{new} from the 2026 lists"
            );
        }
        assert!(registry.providers["sambanova"].trial);
        let first_trial = ranked
            .iter()
            .position(|r| registry.providers[&r.provider].trial)
            .expect("a trial provider's route");
        assert!(
            ranked[first_trial..]
                .iter()
                .all(|r| registry.providers[&r.provider].trial),
            "no true free tier ranks after a trial credit"
        );
        assert!(registry.providers["gemini"].trains_on_prompts);
        assert!(registry.providers["cerebras"].counts_max_tokens);
    }

    #[test]
    fn the_owners_trial_setting_overrides_the_catalogs_when_the_defaults_are_ranked() {
        use crate::config::ProviderSettings;
        let registry = registry();
        let owner = |trial: bool| ProviderSettings {
            trial: Some(trial),
            ..ProviderSettings::default()
        };
        let overrides = BTreeMap::from([
            ("sambanova".to_string(), owner(false)),
            ("groq".to_string(), owner(true)),
        ]);
        let (shipped, owned) = (
            registry.ranked_routes(),
            registry.ranked_routes_for(&overrides),
        );
        let rank = |routes: &[super::super::Route], id: &str| {
            routes.iter().find(|r| r.route_id == id).unwrap().rank
        };
        let (sambanova, flash_lite) = ("sambanova/DeepSeek-V3.2", "gemini/gemini-2.5-flash-lite");
        assert!(rank(&shipped, sambanova) > rank(&shipped, flash_lite));
        assert!(
            rank(&owned, sambanova) < rank(&owned, flash_lite),
            "a score of 83 ranks among the free tiers once the owner says it is not a trial"
        );
        assert!(
            rank(&owned, "groq/llama-3.1-8b-instant") > rank(&owned, "ollama/llama3.2"),
            "a provider the owner calls a trial ranks after every free tier, local Ollama too"
        );
    }

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
            let problem = route.limits.and_then(|l| l.problem());
            assert!(problem.is_none(), "{}: {problem:?}", route.model);
        }
        for gone in &registry.off_free_tier {
            assert!(
                registry.providers.contains_key(&gone.provider),
                "off_free_tier names {}",
                gone.provider
            );
            assert!(
                !gone.models.is_empty() && !gone.why.is_empty() && !gone.source.is_empty(),
                "{}: models, why and source",
                gone.provider
            );
        }
        for (name, provider) in &registry.providers {
            let problem = provider.limits.and_then(|l| l.problem());
            assert!(problem.is_none(), "{name}: {problem:?}");
        }
        let routes = registry.ranked_routes();
        let mut ranks: Vec<_> = routes.iter().map(|r| r.rank).collect();
        ranks.sort();
        ranks.dedup();
        assert_eq!(ranks.len(), routes.len(), "ranks are distinct");
        let mut ids: Vec<_> = routes.iter().map(|r| r.route_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), routes.len(), "route ids are distinct");
        for (name, provider) in &registry.providers {
            assert!(
                crate::providers::adapter_for(&provider.adapter).is_some(),
                "{name}: unknown adapter {}",
                provider.adapter
            );
            if let Some(reset) = &provider.day_reset {
                assert!(
                    super::super::parse_day_reset(reset).is_some(),
                    "{name}: day_reset {reset}"
                );
            }
        }
        for route in &registry.routes {
            if route.tags.iter().any(|t| t == "long-context") {
                assert!(
                    route.context_window.unwrap_or(0) >= 128_000,
                    "{}: long-context under 128k",
                    route.model
                );
            }
            assert!(
                route.score.is_some_and(|s| s <= 100),
                "{} needs a score 0-100",
                route.model
            );
            for tag in &route.tags {
                assert!(
                    super::super::KNOWN_TAGS.contains(&tag.as_str()),
                    "{}: unknown tag {tag}",
                    route.model
                );
            }
        }
    }
}
