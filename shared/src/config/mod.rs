//! Configuration: built-in defaults < `freerouter.toml` (`FREEROUTER_CONFIG`) < `FREEROUTER__…` environment.
//!
//! Provider keys are read from the variables people already have (`GROQ_API_KEY`, …) by the catalog's
//! provider resolution, from the same [`ConfigSource`] so tests never touch the process environment.
//!
//! Settings sit below the catalog: [`Settings::load`] checks what the settings alone can say;
//! the checks against the built-in providers and adapters are the catalog's
//! (`catalog::load_settings`, which the programs call).

mod redact;
mod secret;
mod settings;
mod validate;

pub use redact::redact_url;
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
    /// The message, with every secret the source holds replaced by `***`.
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Where settings come from: an optional TOML document and a set of environment variables.
/// Its `Debug` shows variable names only: the values hold every provider key.
#[derive(Clone, Default)]
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

    /// Every value that may be a secret: the variables that are not plain `FREEROUTER__` settings
    /// (provider keys and the like) and those under `FREEROUTER__AUTH__`, and the strings of the
    /// file's `[auth]` table and providers' `api_keys`. What an error message must not repeat.
    fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .vars
            .iter()
            .filter(|(name, _)| {
                !name.starts_with("FREEROUTER__") || name.starts_with("FREEROUTER__AUTH__")
            })
            .flat_map(|(_, value)| {
                std::iter::once(value.clone()).chain(value.split(',').map(str::to_string))
            })
            .collect();
        if let Some(doc) = self
            .toml
            .as_deref()
            .and_then(|t| t.parse::<toml::Table>().ok())
        {
            fn strings(value: &toml::Value, out: &mut Vec<String>) {
                match value {
                    toml::Value::String(s) => out.push(s.clone()),
                    toml::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
                    toml::Value::Table(table) => table.values().for_each(|v| strings(v, out)),
                    other => out.push(other.to_string()),
                }
            }
            if let Some(auth) = doc.get("auth") {
                strings(auth, &mut out);
            }
            if let Some(toml::Value::Table(providers)) = doc.get("providers") {
                for provider in providers.values() {
                    if let Some(keys) = provider.get("api_keys") {
                        strings(keys, &mut out);
                    }
                }
            }
        }
        out
    }
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("ConfigSource")
            .field(
                "toml",
                &self.toml.as_ref().map(|t| format!("<{} bytes>", t.len())),
            )
            .field("vars", &names)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Layers the source over the defaults and checks what the settings alone can say (the
    /// programs call `catalog::load_settings`, which adds the checks against the built-in catalog).
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        Self::layer(source).map_err(|error| match error {
            ConfigError::Parse(message) => ConfigError::Parse(redact::redact_values(
                &message,
                source.secret_values().iter().map(String::as_str),
            )),
            other => other,
        })
    }

    fn layer(source: &ConfigSource) -> Result<Self, ConfigError> {
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
        // No `try_parsing`: it would read a client key of `007` as the number 7. Values stay
        // strings, and each setting's type parses its own (`"20"` into a number, `"false"` into a bool).
        builder = builder.add_source(
            Environment::with_prefix("FREEROUTER")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("auth.api_keys")
                .with_list_parse_key("server.allowed_hosts")
                .with_list_parse_key("server.allowed_origins")
                .source(Some(env_vars)),
        );
        let parse = |e: config::ConfigError| ConfigError::Parse(e.to_string());
        let mut settings: Settings = builder
            .build()
            .map_err(parse)?
            .try_deserialize()
            .map_err(parse)?;
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
    fn requests_are_served_by_half_the_cores_unless_the_owner_names_a_number() {
        let defaults = Settings::load(&ConfigSource::default()).unwrap().server;
        assert_eq!(defaults.runtime_workers(1), 1);
        assert_eq!(defaults.runtime_workers(2), 1);
        assert_eq!(defaults.runtime_workers(8), 4);
        let named = Settings::load(
            &ConfigSource::default().with_var("FREEROUTER__SERVER__WORKER_THREADS", "3"),
        )
        .unwrap()
        .server;
        assert_eq!(named.runtime_workers(2), 3);
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
    fn a_rolling_window_needs_a_length_of_whole_hours_and_a_limit_to_count() {
        let load = |limits: &str| {
            Settings::load(&ConfigSource::from_toml(format!(
                "[providers.lab]\nbase_url = \"http://127.0.0.1:9000/v1\"\nlimits = {{ {limits} }}"
            )))
        };
        let settings = load("window_hours = 5, rpwindow = 40, tpwindow = 200000").unwrap();
        let limits = settings.providers["lab"].limits.unwrap();
        assert_eq!(
            (limits.window_hours, limits.rpwindow, limits.tpwindow),
            (Some(5), Some(40), Some(200_000))
        );
        for (bad, says) in [
            ("window_hours = 5", "needs rpwindow or tpwindow"),
            ("rpwindow = 40", "need window_hours"),
            ("window_hours = 0, rpwindow = 40", "between 1 and 744"),
            ("window_hours = 745, tpwindow = 9", "between 1 and 744"),
        ] {
            let err = load(bad).unwrap_err().to_string();
            assert!(
                err.contains("providers.lab.limits") && err.contains(says),
                "{bad}: {err}"
            );
        }
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
    fn numeric_client_keys_and_admin_tokens_load_as_the_strings_written() {
        let env = Settings::load(
            &ConfigSource::default()
                .with_var("FREEROUTER__AUTH__API_KEYS", "12345")
                .with_var("FREEROUTER__AUTH__ADMIN_TOKEN", "0123"),
        )
        .unwrap();
        assert_eq!(env.auth.api_keys.len(), 1);
        assert_eq!(env.auth.api_keys[0].expose(), "12345");
        assert_eq!(
            env.auth.admin_token.unwrap().expose(),
            "0123",
            "leading zero kept"
        );
        let listed = Settings::load(
            &ConfigSource::default().with_var("FREEROUTER__AUTH__API_KEYS", "007, 12"),
        )
        .unwrap();
        let keys: Vec<&str> = listed.auth.api_keys.iter().map(|k| k.expose()).collect();
        assert_eq!(keys, ["007", "12"]);
        let toml = Settings::load(&ConfigSource::from_toml(
            "[auth]\nadmin_token = 123\napi_keys = [4567, \"sk-x\"]\nmetrics_token = 99",
        ))
        .unwrap();
        assert_eq!(toml.auth.admin_token.unwrap().expose(), "123");
        assert_eq!(toml.auth.api_keys[0].expose(), "4567");
        assert_eq!(toml.auth.metrics_token.unwrap().expose(), "99");
    }

    #[test]
    fn a_startup_error_never_repeats_a_secret() {
        let cases = [
            ConfigSource::from_toml("[auth]\nadmin_token = 98765.25"),
            ConfigSource::from_toml("[auth]\napi_keys = { k = \"sk-table-secret\" }"),
            ConfigSource::from_toml("[auth]\nadmin_token = [\"tok-list-secret\"]"),
            // A key pasted into the wrong variable: that setting's error quotes the value.
            ConfigSource::default()
                .with_var("GROQ_API_KEY", "gsk-pasted-secret")
                .with_var("FREEROUTER__SERVER__MAX_BODY_BYTES", "gsk-pasted-secret"),
            ConfigSource::default()
                .with_var("FREEROUTER__AUTH__ADMIN_TOKEN", "adm-secret-1")
                .with_var("FREEROUTER__SERVER__SHUTDOWN_GRACE_S", "adm-secret-1"),
        ];
        for source in cases {
            let err = Settings::load(&source).unwrap_err().to_string();
            for secret in [
                "98765",
                "sk-table-secret",
                "tok-list-secret",
                "gsk-pasted",
                "adm-secret",
            ] {
                assert!(!err.contains(secret), "{err}");
            }
        }
    }

    #[test]
    fn a_config_source_prints_variable_names_but_no_value() {
        let source = ConfigSource::from_toml("[auth]\nadmin_token = \"tok-in-file\"")
            .with_var("GROQ_API_KEY", "gsk-in-env");
        let printed = format!("{source:?}");
        assert!(printed.contains("GROQ_API_KEY"), "{printed}");
        assert!(
            !printed.contains("gsk-in-env") && !printed.contains("tok-in-file"),
            "{printed}"
        );
    }

    #[test]
    fn a_provider_base_url_prints_without_its_credentials() {
        let settings = Settings::load(&ConfigSource::from_toml(
            "[providers.lab]\nbase_url = \"https://user:hunter2@h/v1?key=k-secret\"",
        ))
        .unwrap();
        let printed = format!("{settings:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("k-secret"),
            "{printed}"
        );
        assert!(printed.contains("https://***@h/v1?key=***"), "{printed}");
    }

    #[test]
    fn the_per_client_limit_spares_loopback_until_it_is_set() {
        let default = Settings::load(&ConfigSource::default()).unwrap();
        let limit = default.limits.per_client().unwrap();
        assert_eq!((limit.burst, limit.per_second), (120, 20));
        assert!(!limit.loopback_too);
        let set = Settings::load(
            &ConfigSource::default().with_var("FREEROUTER__LIMITS__PER_CLIENT_PER_SECOND", "5"),
        )
        .unwrap();
        assert!(set.limits.per_client().unwrap().loopback_too);
        let off = Settings::load(
            &ConfigSource::default().with_var("FREEROUTER__LIMITS__PER_CLIENT_BURST", "0"),
        )
        .unwrap();
        assert_eq!(off.limits.per_client(), None);
    }

    #[test]
    fn hosts_and_origins_come_from_the_environment_as_lists() {
        let settings = Settings::load(
            &ConfigSource::default()
                .with_var(
                    "FREEROUTER__SERVER__ALLOWED_HOSTS",
                    "homeserver.lan,gateway",
                )
                .with_var(
                    "FREEROUTER__SERVER__ALLOWED_ORIGINS",
                    "http://localhost:3000",
                ),
        )
        .unwrap();
        assert_eq!(settings.server.allowed_hosts, ["homeserver.lan", "gateway"]);
        assert_eq!(settings.server.allowed_origins, ["http://localhost:3000"]);
        let bad = ConfigSource::default().with_var("FREEROUTER__SERVER__ALLOWED_ORIGINS", "evil");
        assert!(Settings::load(&bad).is_err());
    }

    #[test]
    fn a_protected_console_needs_an_admin_token() {
        let source = ConfigSource::from_toml("[auth]\nprotect_console = true");
        let err = Settings::load(&source).unwrap_err().to_string();
        assert!(err.contains("admin_token"), "{err}");
        let with_token =
            ConfigSource::from_toml("[auth]\nprotect_console = true\nadmin_token = \"t-1\"");
        assert!(Settings::load(&with_token).is_ok());
    }
}
