//! The settings checked against what the catalog knows: built-in provider names, adapters, day
//! resets. Settings sit below the catalog, so these checks live here, and [`load_settings`] is
//! what the programs call: the settings' own checks, then these, before any port is bound.

use super::builtin;
use super::parse_day_reset;
use crate::config::{ConfigError, ConfigSource, Settings};

/// Loads the settings and checks them against the catalog.
pub fn load_settings(source: &ConfigSource) -> Result<Settings, ConfigError> {
    let settings = Settings::load(source)?;
    check_settings(&settings)?;
    Ok(settings)
}

/// Providers and routes that name what the catalog does not know.
pub fn check_settings(settings: &Settings) -> Result<(), ConfigError> {
    let invalid = |msg: String| Err(ConfigError::Invalid(msg));
    let builtins = builtin::registry();
    for (name, provider) in &settings.providers {
        if provider.base_url.is_none() && !builtins.providers.contains_key(name) {
            return invalid(format!(
                "providers.{name} is not a built-in provider, so it needs a base_url"
            ));
        }
        if let Some(adapter) = &provider.adapter
            && crate::providers::adapter_for(adapter).is_none()
        {
            return invalid(format!("providers.{name}.adapter {adapter:?} is unknown"));
        }
        if let Some(reset) = &provider.day_reset
            && parse_day_reset(reset).is_none()
        {
            return invalid(format!(
                "providers.{name}.day_reset must look like \"00:00 UTC\", got {reset:?}"
            ));
        }
    }
    for (i, route) in settings.routes.iter().enumerate() {
        let known = builtins.providers.contains_key(&route.provider)
            || settings.providers.contains_key(&route.provider);
        if !known {
            return invalid(format!(
                "routes[{i}] names provider {:?}, which is neither built in nor declared under [providers]",
                route.provider
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_on_an_unknown_custom_provider_without_base_url_is_refused() {
        let source = ConfigSource::from_toml(
            "[providers.lab]\n[[routes]]\nprovider = \"lab\"\nmodel = \"m\"",
        );
        let err = load_settings(&source).unwrap_err().to_string();
        assert!(err.contains("base_url"), "{err}");
    }

    #[test]
    fn an_unknown_adapter_or_route_provider_is_refused_and_built_ins_pass() {
        let adapter = ConfigSource::from_toml(
            "[providers.lab]\nbase_url = \"http://h/v1\"\nadapter = \"nope\"",
        );
        assert!(
            load_settings(&adapter)
                .unwrap_err()
                .to_string()
                .contains("adapter")
        );
        let route = ConfigSource::from_toml("[[routes]]\nprovider = \"nowhere\"\nmodel = \"m\"");
        assert!(
            load_settings(&route)
                .unwrap_err()
                .to_string()
                .contains("nowhere")
        );
        let groq = ConfigSource::from_toml("[[routes]]\nprovider = \"groq\"\nmodel = \"m\"");
        assert!(load_settings(&groq).is_ok());
    }
}
