//! Checks that need more than types: run before any port is bound.

use super::{ConfigError, Settings};
use crate::catalog::builtin;
use std::net::SocketAddr;

pub(super) fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let invalid = |msg: String| Err(ConfigError::Invalid(msg));
    if settings.server.listen.parse::<SocketAddr>().is_err() {
        return invalid(format!(
            "server.listen must be an address like 127.0.0.1:8000, got {:?}",
            settings.server.listen
        ));
    }
    if settings.limits.max_concurrent_requests == 0 {
        return invalid("limits.max_concurrent_requests must be at least 1".into());
    }
    if !(settings.limits.queue_timeout_s.is_finite() && settings.limits.queue_timeout_s >= 0.0) {
        return invalid("limits.queue_timeout_s must be a non-negative number".into());
    }
    if settings.routing.attempt_budget == 0 {
        return invalid("routing.attempt_budget must be at least 1".into());
    }
    if settings.server.max_body_bytes < 1024 {
        return invalid("server.max_body_bytes must be at least 1024".into());
    }
    let builtins = builtin::registry();
    for (name, provider) in &settings.providers {
        let known = builtins.providers.contains_key(name);
        match &provider.base_url {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return invalid(format!(
                    "providers.{name}.base_url must start with http:// or https://"
                ));
            }
            None if !known => {
                return invalid(format!(
                    "providers.{name} is not a built-in provider, so it needs a base_url"
                ));
            }
            _ => {}
        }
        if let Some(adapter) = &provider.adapter
            && crate::providers::adapter_for(adapter).is_none()
        {
            return invalid(format!("providers.{name}.adapter {adapter:?} is unknown"));
        }
        if let Some(reset) = &provider.day_reset
            && crate::catalog::parse_day_reset(reset).is_none()
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
        if route.model.trim().is_empty() {
            return invalid(format!("routes[{i}].model must not be empty"));
        }
    }
    Ok(())
}
