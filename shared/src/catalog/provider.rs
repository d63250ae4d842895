//! Providers as the running system sees them: built-ins merged with config, keys read from the environment.

use super::builtin;
use crate::config::{ConfigSource, Limits, Secret, Settings};
use std::collections::BTreeMap;

/// One provider key and its fingerprint (the only form that is stored or shown).
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub secret: Secret,
    pub id: String,
}

impl ApiKey {
    pub fn new(secret: Secret) -> Self {
        let id = secret.fingerprint();
        Self { secret, id }
    }
}

/// A provider ready to be called. Its `Debug` shows the base URL without credentials.
#[derive(Clone)]
pub struct Provider {
    pub name: String,
    /// Adapter name (see `providers::adapter_for`).
    pub adapter: String,
    pub base_url: String,
    pub keys: Vec<ApiKey>,
    /// Serves without a key (a local server the user pointed us at).
    pub keyless: bool,
    pub limits: Limits,
    /// Minutes after UTC midnight when daily quotas reset.
    pub day_reset_minute: u32,
    /// Variables a user sets to give this provider a key (for error messages and `config check`).
    pub key_env: Vec<String>,
    pub first_token_timeout_ms: Option<u64>,
    /// Values the adapter needs besides the key (Cloudflare's `account_id`), by name.
    pub params: BTreeMap<String, String>,
    /// Params that were asked for but are not set: the provider is not usable until they are.
    pub missing_params: Vec<String>,
    /// Counts a request's `max_tokens` (or the route's maximum output when absent) against its
    /// token window before answering, and keeps it counted: reservations do the same.
    pub counts_max_tokens: bool,
    /// Its terms let it train on (or keep) prompts (`catalog::data_use`).
    pub trains_on_prompts: bool,
    /// Where that was read (`freerouter.toml` when the owner said so).
    pub trains_on_prompts_source: Option<String>,
    /// Its free use is a trial credit that runs out (the catalog's `trial`).
    pub trial: bool,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("adapter", &self.adapter)
            .field("base_url", &crate::config::redact_url(&self.base_url))
            .field("keys", &self.keys)
            .field("keyless", &self.keyless)
            .field("limits", &self.limits)
            .field("day_reset_minute", &self.day_reset_minute)
            .field("key_env", &self.key_env)
            .field("first_token_timeout_ms", &self.first_token_timeout_ms)
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .field("missing_params", &self.missing_params)
            .field("counts_max_tokens", &self.counts_max_tokens)
            .field("trains_on_prompts", &self.trains_on_prompts)
            .finish()
    }
}

impl Provider {
    /// A keyless OpenAI-compatible provider without limits (a local server; tests, benches, embedding).
    pub fn keyless(name: &str, base_url: &str) -> Provider {
        Provider {
            name: name.to_string(),
            adapter: "openai".into(),
            base_url: base_url.trim_end_matches('/').to_string(),
            keys: Vec::new(),
            keyless: true,
            limits: Limits::default(),
            day_reset_minute: 0,
            key_env: Vec::new(),
            first_token_timeout_ms: None,
            params: BTreeMap::new(),
            missing_params: Vec::new(),
            counts_max_tokens: false,
            trains_on_prompts: false,
            trains_on_prompts_source: None,
            trial: false,
        }
    }

    /// Whether requests can be sent at all: it has a key (or needs none) and every param it needs.
    pub fn usable(&self) -> bool {
        (self.keyless || !self.keys.is_empty()) && self.missing_params.is_empty()
    }
}

/// `"HH:MM UTC"` → minutes after UTC midnight.
pub fn parse_day_reset(text: &str) -> Option<u32> {
    let time = text.trim().strip_suffix("UTC")?.trim();
    let (h, m) = time.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn keys_from_vars(source: &ConfigSource, names: &[String]) -> Vec<ApiKey> {
    let mut keys: Vec<ApiKey> = Vec::new();
    for name in names {
        for value in source.var(name).unwrap_or_default().split(',') {
            let value = value.trim();
            if !value.is_empty() && !keys.iter().any(|k| k.secret.expose() == value) {
                keys.push(ApiKey::new(Secret::new(value)));
            }
        }
    }
    keys
}

/// Every provider the system knows: the built-ins with config overrides, then the user's own.
pub fn resolve_providers(settings: &Settings, source: &ConfigSource) -> BTreeMap<String, Provider> {
    let mut out = BTreeMap::new();
    for (name, builtin) in &builtin::registry().providers {
        let overrides = settings.providers.get(name).cloned().unwrap_or_default();
        let env_base = builtin.base_url_env.as_deref().and_then(|v| source.var(v));
        let mut key_env = builtin.key_env.clone();
        key_env.extend(overrides.api_key_env.clone());
        let mut keys = keys_from_vars(source, &key_env);
        keys.extend(overrides.api_keys.iter().cloned().map(ApiKey::new));
        let base_url = overrides
            .base_url
            .clone()
            .or_else(|| env_base.map(str::to_string))
            .unwrap_or_else(|| builtin.base_url.clone());
        // A keyless built-in (local Ollama) is only used once the user points at it.
        let keyless = builtin.keyless && (env_base.is_some() || overrides.base_url.is_some());
        if builtin.keyless {
            key_env = builtin.base_url_env.iter().cloned().collect();
        }
        let mut params = BTreeMap::new();
        let mut missing_params = Vec::new();
        for (param, var) in &builtin.params {
            match source.var(var) {
                Some(value) => {
                    params.insert(param.clone(), value.trim().to_string());
                }
                None => missing_params.push(var.clone()),
            }
        }
        out.insert(
            name.clone(),
            Provider {
                name: name.clone(),
                adapter: overrides
                    .adapter
                    .clone()
                    .unwrap_or_else(|| builtin.adapter.clone()),
                base_url: base_url.trim_end_matches('/').to_string(),
                keys,
                keyless,
                limits: overrides.limits.or(builtin.limits).unwrap_or_default(),
                day_reset_minute: overrides
                    .day_reset
                    .as_deref()
                    .or(builtin.day_reset.as_deref())
                    .and_then(parse_day_reset)
                    .unwrap_or(0),
                key_env,
                first_token_timeout_ms: overrides
                    .first_token_timeout_ms
                    .or(builtin.first_token_timeout_ms),
                params,
                missing_params,
                counts_max_tokens: overrides
                    .counts_max_tokens
                    .unwrap_or(builtin.counts_max_tokens),
                trains_on_prompts: overrides
                    .trains_on_prompts
                    .unwrap_or(builtin.trains_on_prompts),
                trains_on_prompts_source: match overrides.trains_on_prompts {
                    Some(_) => Some("freerouter.toml".to_string()),
                    None => builtin.trains_on_prompts_source.clone(),
                },
                trial: overrides.trial.unwrap_or(builtin.trial),
            },
        );
    }
    for (name, custom) in &settings.providers {
        if out.contains_key(name) {
            continue;
        }
        let key_env: Vec<String> = custom.api_key_env.iter().cloned().collect();
        let mut keys = keys_from_vars(source, &key_env);
        keys.extend(custom.api_keys.iter().cloned().map(ApiKey::new));
        out.insert(
            name.clone(),
            Provider {
                name: name.clone(),
                adapter: custom.adapter.clone().unwrap_or_else(|| "openai".into()),
                base_url: custom
                    .base_url
                    .clone()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_string(),
                keyless: key_env.is_empty() && custom.api_keys.is_empty(),
                keys,
                limits: custom.limits.unwrap_or_default(),
                day_reset_minute: custom
                    .day_reset
                    .as_deref()
                    .and_then(parse_day_reset)
                    .unwrap_or(0),
                key_env,
                first_token_timeout_ms: custom.first_token_timeout_ms,
                params: BTreeMap::new(),
                missing_params: Vec::new(),
                counts_max_tokens: custom.counts_max_tokens.unwrap_or(false),
                trains_on_prompts: custom.trains_on_prompts.unwrap_or(false),
                trains_on_prompts_source: custom
                    .trains_on_prompts
                    .map(|_| "freerouter.toml".to_string()),
                trial: custom.trial.unwrap_or(false),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_comma_separated_keys_become_several_keys() {
        let source = ConfigSource::default().with_var("GROQ_API_KEY", "gsk_a, gsk_b,,gsk_a");
        let settings = Settings::load(&source).unwrap();
        let providers = resolve_providers(&settings, &source);
        assert_eq!(providers["groq"].keys.len(), 2);
        assert!(!providers["gemini"].usable());
        assert!(
            !providers["ollama"].usable(),
            "local Ollama waits for OLLAMA_BASE_URL"
        );
    }

    #[test]
    fn a_base_url_override_and_a_custom_provider_are_honoured() {
        let source = ConfigSource::from_toml(
            "[providers.groq]\nbase_url = \"http://127.0.0.1:9/openai/v1/\"\n[providers.lab]\nbase_url = \"http://127.0.0.1:9000/v1\"",
        );
        let settings = Settings::load(&source).unwrap();
        let providers = resolve_providers(&settings, &source);
        assert_eq!(providers["groq"].base_url, "http://127.0.0.1:9/openai/v1");
        assert!(providers["lab"].keyless && providers["lab"].usable());
    }

    #[test]
    fn day_reset_times_parse() {
        assert_eq!(parse_day_reset("00:00 UTC"), Some(0));
        assert_eq!(parse_day_reset("08:30 UTC"), Some(510));
        assert_eq!(parse_day_reset("25:00 UTC"), None);
        assert_eq!(parse_day_reset("midnight"), None);
    }
}
