//! A route: one model on one provider, with its rank, capabilities and limits.

use crate::config::Limits;
use serde::{Deserialize, Serialize};

/// Where a route came from; `manual` and `discovered` ones survive a reset to defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Default,
    Discovered,
    Manual,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::Discovered => "discovered",
            Origin::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "default" => Some(Origin::Default),
            "discovered" => Some(Origin::Discovered),
            "manual" => Some(Origin::Manual),
            _ => None,
        }
    }
}

/// A route as the catalog holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Route {
    pub route_id: String,
    pub provider: String,
    pub upstream_model: String,
    pub display_name: String,
    /// 1 is tried first.
    pub rank: i64,
    pub tags: Vec<String>,
    /// Other names clients use for this model (one model on several providers shares an alias).
    pub aliases: Vec<String>,
    pub context_window_tokens: u64,
    /// The most the model writes in one answer; [`UNDECLARED_MAX_OUTPUT`] when nobody said.
    pub max_output_tokens: u64,
    pub enabled: bool,
    pub origin: Origin,
    pub limits: Limits,
}

impl Route {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// A route as a data file or the config declares it, before it has an id.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSeed {
    pub provider: String,
    pub model: String,
    pub display_name: Option<String>,
    /// Explicit rank; when absent the catalog ranks by `score`.
    pub rank: Option<i64>,
    /// Capability score 0–100 (see the header of `catalog/default.toml`).
    pub score: Option<u32>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub context_window: Option<u64>,
    pub max_output: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub limits: Option<Limits>,
}

/// The default context window assumed for a route that does not say.
pub const DEFAULT_CONTEXT_WINDOW: u64 = 8192;

/// A route whose maximum output nobody declared: a client's `max_tokens` is sent as asked (a
/// guess would cut answers short), and the provider's own limit applies.
pub const UNDECLARED_MAX_OUTPUT: u64 = 0;

impl RouteSeed {
    /// `rank` is used when the seed has none of its own.
    pub fn into_route(self, origin: Origin, enabled: bool, rank: i64) -> Route {
        Route {
            route_id: route_id(&self.provider, &self.model),
            display_name: self.display_name.unwrap_or_else(|| self.model.clone()),
            provider: self.provider,
            upstream_model: self.model,
            rank: self.rank.unwrap_or(rank),
            tags: self.tags,
            aliases: self.aliases,
            context_window_tokens: self.context_window.unwrap_or(DEFAULT_CONTEXT_WINDOW),
            max_output_tokens: self.max_output.unwrap_or(UNDECLARED_MAX_OUTPUT),
            enabled,
            origin,
            limits: self.limits.unwrap_or_default(),
        }
    }
}

/// `provider/model`, e.g. `groq/llama-3.3-70b-versatile`.
pub fn route_id(provider: &str, model: &str) -> String {
    format!("{provider}/{model}")
}
