//! Configuration: built-in defaults < `freerouter.toml` (`FREEROUTER_CONFIG`) < `FREEROUTER__…` environment.
//!
//! Provider keys are read from the variables people already have (`GROQ_API_KEY`, …) by the catalog's
//! provider resolution, from the same [`ConfigSource`] so tests never touch the process environment.

mod secret;
mod settings;
mod validate;

pub use secret::Secret;
pub use settings::*;

use std::collections::HashMap;
use std::path::PathBuf;

/// Why configuration could not be loaded. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Where settings come from: an optional TOML document and a set of environment variables.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    /// The contents of `freerouter.toml`, if any.
    pub toml: Option<String>,
    /// Environment variables (the process's, plus `.env`), both `FREEROUTER__…` and provider keys.
    pub vars: HashMap<String, String>,
}

impl ConfigSource {
    /// The process environment, `.env` when present, and the file named by `FREEROUTER_CONFIG`
    /// (else `./freerouter.toml` when it exists).
    pub fn from_process() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        let vars: HashMap<String, String> = std::env::vars().collect();
        let path = match vars.get("FREEROUTER_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("freerouter.toml")).filter(|p| p.exists()),
        };
        let toml = match path {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::Read { path, source })?,
            ),
            None => None,
        };
        Ok(Self { toml, vars })
    }

    /// A source with just a TOML document (tests, embedding).
    pub fn from_toml(toml: impl Into<String>) -> Self {
        Self {
            toml: Some(toml.into()),
            vars: HashMap::new(),
        }
    }

    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

impl Settings {
    /// Layers the source over the defaults and validates the result.
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        use config::{Config, Environment, File, FileFormat};
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
        if let Some(toml) = &source.toml {
            builder = builder.add_source(File::from_str(toml, FileFormat::Toml));
        }
        let env_vars: HashMap<String, String> = source
            .vars
            .iter()
            .filter(|(k, _)| k.starts_with("FREEROUTER__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("FREEROUTER")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("auth.api_keys")
                .with_list_parse_key("routing.passthrough_fields")
                .source(Some(env_vars)),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        // `FREEROUTER__AUTH__ADMIN_TOKEN=` in a .env file means "no token", never "the empty token"
        // (which a request without credentials would match).
        settings
            .auth
            .admin_token
            .take_if(|token| token.expose().trim().is_empty());
        settings
            .auth
            .api_keys
            .retain(|key| !key.expose().trim().is_empty());
        validate::validate(&settings)?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tokens_in_the_environment_mean_no_token() {
        let settings = Settings::load(
            &ConfigSource::default()
                .with_var("FREEROUTER__AUTH__ADMIN_TOKEN", "")
                .with_var("FREEROUTER__AUTH__API_KEYS", ""),
        )
        .unwrap();
        assert!(settings.auth.admin_token.is_none());
        assert!(settings.auth.api_keys.is_empty());
        let spaced = Settings::load(
            &ConfigSource::default()
                .with_var("FREEROUTER__AUTH__ADMIN_TOKEN", "  ")
                .with_var("FREEROUTER__AUTH__API_KEYS", "a,,b"),
        )
        .unwrap();
        assert!(spaced.auth.admin_token.is_none());
        assert_eq!(spaced.auth.api_keys.len(), 2);
    }

    #[test]
    fn defaults_load_and_match_the_design() {
        let settings = Settings::load(&ConfigSource::default()).unwrap();
        assert_eq!(settings.server.listen, "127.0.0.1:8000");
        assert_eq!(settings.limits.max_concurrent_requests, 20);
        assert_eq!(settings.routing.attempt_budget, 8);
        assert!(settings.catalog.defaults);
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_defaults() {
        let source =
            ConfigSource::from_toml("[limits]\nmax_concurrent_requests = 7\nmax_queue = 9")
                .with_var("FREEROUTER__LIMITS__MAX_QUEUE", "11")
                .with_var("FREEROUTER__AUTH__API_KEYS", "a,b");
        let settings = Settings::load(&source).unwrap();
        assert_eq!(settings.limits.max_concurrent_requests, 7);
        assert_eq!(settings.limits.max_queue, 11);
        assert_eq!(settings.auth.api_keys.len(), 2);
        assert_eq!(settings.auth.api_keys[1].expose(), "b");
    }

    #[test]
    fn custom_providers_and_routes_parse_in_the_documented_shape() {
        let source = ConfigSource::from_toml(
            r#"
            [providers.lab]
            base_url = "http://127.0.0.1:9000/v1"
            api_key_env = "LAB_API_KEY"
            limits = { rpm = 30, rpd = 1000, tpm = 6000, tpd = 100000 }
            day_reset = "00:00 UTC"

            [[routes]]
            provider = "lab"
            model = "sim-model"
            rank = 1
            context_window = 32768
            tags = ["tools", "json"]
            limits = { rpm = 10 }
            "#,
        );
        let settings = Settings::load(&source).unwrap();
        assert_eq!(settings.providers["lab"].limits.unwrap().rpm, Some(30));
        assert_eq!(settings.routes[0].limits.unwrap().rpm, Some(10));
    }

    #[test]
    fn an_invalid_value_is_refused_with_its_name_and_no_secret() {
        let source = ConfigSource::from_toml(
            "[server]\nlisten = \"not an address\"\n[auth]\nadmin_token = \"tok-123\"",
        );
        let err = Settings::load(&source).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
        assert!(!err.contains("tok-123"));
    }

    #[test]
    fn a_route_on_an_unknown_custom_provider_without_base_url_is_refused() {
        let source = ConfigSource::from_toml(
            "[providers.lab]\n[[routes]]\nprovider = \"lab\"\nmodel = \"m\"",
        );
        let err = Settings::load(&source).unwrap_err().to_string();
        assert!(err.contains("base_url"), "{err}");
    }
}
