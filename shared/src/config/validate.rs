//! Checks that need more than types and that the settings alone can answer: run before any port
//! is bound. (Whether a provider is built in, or an adapter exists, is the catalog's to say:
//! `catalog::check_settings`.)

use super::{ConfigError, Settings};
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
    let reserve = settings.routing.low_priority_reserve;
    if !(reserve.is_finite() && (0.0..=1.0).contains(&reserve)) {
        return invalid(format!(
            "routing.low_priority_reserve must be a share between 0 and 1 (0.2 = 20 % of RPD), got {reserve}"
        ));
    }
    if let Some(stray) = settings.auth.low_priority_keys.iter().find(|k| {
        !settings
            .auth
            .api_keys
            .iter()
            .any(|a| a.expose() == k.expose())
    }) {
        return invalid(format!(
            "auth.low_priority_keys holds a key that is not one of auth.api_keys ({})",
            stray.fingerprint()
        ));
    }
    if settings.routing.attempt_budget == 0 {
        return invalid("routing.attempt_budget must be at least 1".into());
    }
    if settings.server.max_body_bytes < 1024 {
        return invalid("server.max_body_bytes must be at least 1024".into());
    }
    if settings.server.max_connections == 0 {
        return invalid("server.max_connections must be at least 1".into());
    }
    for (name, value) in [
        (
            "server.header_read_timeout_ms",
            settings.server.header_read_timeout_ms,
        ),
        (
            "server.body_read_timeout_ms",
            settings.server.body_read_timeout_ms,
        ),
        (
            "auth.failed_auth_window_ms",
            settings.auth.failed_auth_window_ms,
        ),
    ] {
        if value == 0 {
            return invalid(format!("{name} must be at least 1"));
        }
    }
    if settings.auth.failed_auth_per_client == 0 || settings.auth.failed_auth_total == 0 {
        return invalid(
            "auth.failed_auth_per_client and auth.failed_auth_total must be at least 1".into(),
        );
    }
    if settings.auth.protect_console && settings.auth.admin_token.is_none() {
        return invalid(
            "auth.protect_console needs auth.admin_token (FREEROUTER__AUTH__ADMIN_TOKEN): without it \
             nobody could sign in to see the console"
                .into(),
        );
    }
    for origin in &settings.server.allowed_origins {
        if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
            return invalid(format!(
                "server.allowed_origins entries look like http://localhost:3000 (or \"*\"), got {origin:?}"
            ));
        }
    }
    for (name, provider) in &settings.providers {
        if let Some(url) = &provider.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid(format!(
                "providers.{name}.base_url must start with http:// or https://"
            ));
        }
        if let Some(problem) = provider.limits.as_ref().and_then(|l| l.problem()) {
            return invalid(format!("providers.{name}.limits: {problem}"));
        }
    }
    for (i, route) in settings.routes.iter().enumerate() {
        if route.model.trim().is_empty() {
            return invalid(format!("routes[{i}].model must not be empty"));
        }
        if let Some(problem) = route.limits.as_ref().and_then(|l| l.problem()) {
            return invalid(format!("routes[{i}].limits: {problem}"));
        }
    }
    Ok(())
}
