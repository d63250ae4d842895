//! What of a client's chat request may reach an upstream: OpenAI's chat completion fields (listed
//! once, here), plus the fields the route's adapter declares for its provider, plus what the owner
//! names in `routing.passthrough_fields`. Everything else is dropped: a client must not be able to
//! spend the owner's money through provider routing or billing fields (OpenRouter's `models`,
//! `route`, `provider`, `plugins`, `transforms`; any `extra_body`), which no list here names.
//! Embeddings requests follow the same rule with their own lists ([`EMBEDDING_FIELDS`],
//! `ProviderAdapter::embedding_fields`).

use crate::providers::ProviderAdapter;
use std::collections::BTreeSet;

/// OpenAI's chat completion request fields that free tiers take without cost. Left out on purpose:
/// `store` and `service_tier` (stored completions, priority processing), `web_search_options`,
/// `audio` and `modalities` (billed extras), and anything provider-specific (adapters declare those).
pub const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stream",
    "stream_options",
    "response_format",
    "seed",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "reasoning_effort",
    "metadata",
    "prediction",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
];

/// OpenAI's embeddings request fields that reach an upstream. `model` is set per route, and
/// `encoding_format` is the gateway's to honour: every upstream is asked for floats, and the
/// gateway packs them when the client wants base64 (not every free tier can).
pub const EMBEDDING_FIELDS: &[&str] = &["input", "dimensions", "user"];

/// Fields only routes tagged `reasoning` take: a model that does not reason refuses them as
/// unknown, so they reach the others not at all ("passed where a route takes it").
pub const REASONING_FIELDS: &[&str] = &["reasoning_effort"];

/// Which client fields reach which upstream.
#[derive(Clone, Debug, Default)]
pub struct FieldPolicy {
    /// Named by the owner: reach every upstream.
    passthrough: BTreeSet<String>,
    /// Declared by any adapter: kept when the request is parsed, sent only to that adapter's routes.
    declared_somewhere: BTreeSet<&'static str>,
    /// The same for embeddings requests.
    embedding_declared_somewhere: BTreeSet<&'static str>,
    /// Keep everything (tests and tools that build requests for inspection).
    everything: bool,
}

impl FieldPolicy {
    pub fn new<'a>(
        passthrough: &[String],
        adapters: impl IntoIterator<Item = &'a dyn ProviderAdapter>,
    ) -> Self {
        let adapters: Vec<&dyn ProviderAdapter> = adapters.into_iter().collect();
        Self {
            passthrough: passthrough.iter().cloned().collect(),
            declared_somewhere: adapters
                .iter()
                .flat_map(|a| a.extra_fields().iter().copied())
                .collect(),
            embedding_declared_somewhere: adapters
                .iter()
                .flat_map(|a| a.embedding_fields().iter().copied())
                .collect(),
            everything: false,
        }
    }

    /// A policy that drops nothing at parse time (tests, fuzzing).
    pub fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    /// Whether a field may reach some upstream, so is worth keeping once parsed.
    pub fn keeps(&self, name: &str) -> bool {
        self.everything
            || CHAT_FIELDS.contains(&name)
            || self.passthrough.contains(name)
            || self.declared_somewhere.contains(name)
    }

    /// Whether a field reaches a route behind `adapter`, tagged `reasoning` or not.
    pub fn reaches_route(
        &self,
        name: &str,
        adapter: Option<&dyn ProviderAdapter>,
        reasoning_route: bool,
    ) -> bool {
        (reasoning_route || !REASONING_FIELDS.contains(&name)) && self.reaches(name, adapter)
    }

    /// Whether a field of an embeddings request may reach some upstream, so is worth keeping.
    pub fn keeps_embedding(&self, name: &str) -> bool {
        self.everything
            || EMBEDDING_FIELDS.contains(&name)
            || self.passthrough.contains(name)
            || self.embedding_declared_somewhere.contains(name)
    }

    /// Whether a field of an embeddings request reaches the upstream behind `adapter`.
    pub fn reaches_embedding(&self, name: &str, adapter: Option<&dyn ProviderAdapter>) -> bool {
        EMBEDDING_FIELDS.contains(&name)
            || self.passthrough.contains(name)
            || adapter.is_some_and(|a| a.embedding_fields().contains(&name))
    }

    /// Whether a field reaches the upstream behind `adapter`.
    pub fn reaches(&self, name: &str, adapter: Option<&dyn ProviderAdapter>) -> bool {
        CHAT_FIELDS.contains(&name)
            || self.passthrough.contains(name)
            || adapter.is_some_and(|a| a.extra_fields().contains(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::adapter_for;

    #[test]
    fn billing_fields_reach_no_upstream_unless_the_owner_names_them() {
        let openrouter = adapter_for("openrouter").unwrap();
        let openai = adapter_for("openai").unwrap();
        let adapters = [openrouter.as_ref(), openai.as_ref()];
        let policy = FieldPolicy::new(&[], adapters);
        for field in [
            "models",
            "route",
            "provider",
            "plugins",
            "transforms",
            "extra_body",
        ] {
            assert!(!policy.keeps(field), "{field}");
            assert!(!policy.reaches(field, Some(openrouter.as_ref())), "{field}");
        }
        assert!(policy.reaches("seed", Some(openai.as_ref())));
        assert!(policy.reaches("top_k", Some(openrouter.as_ref())));
        assert!(!policy.reaches("top_k", Some(openai.as_ref())));
        assert!(policy.reaches_route("reasoning_effort", Some(openai.as_ref()), true));
        assert!(!policy.reaches_route("reasoning_effort", Some(openai.as_ref()), false));
        assert!(policy.reaches_route("seed", Some(openai.as_ref()), false));
        let owner = FieldPolicy::new(&["provider".to_string()], adapters);
        assert!(owner.keeps("provider"));
        assert!(owner.reaches("provider", Some(openrouter.as_ref())));
    }

    #[test]
    fn embeddings_fields_reach_only_the_adapters_that_declare_them() {
        let nvidia = adapter_for("nvidia").unwrap();
        let openai = adapter_for("openai").unwrap();
        let policy = FieldPolicy::new(&[], [nvidia.as_ref(), openai.as_ref()]);
        assert!(policy.keeps_embedding("input_type"));
        assert!(policy.reaches_embedding("input_type", Some(nvidia.as_ref())));
        assert!(!policy.reaches_embedding("input_type", Some(openai.as_ref())));
        assert!(policy.reaches_embedding("dimensions", Some(openai.as_ref())));
        for field in ["encoding_format", "model", "provider", "messages"] {
            assert!(
                !policy.reaches_embedding(field, Some(nvidia.as_ref())),
                "{field}"
            );
        }
        assert!(!policy.keeps_embedding("provider"));
    }
}
