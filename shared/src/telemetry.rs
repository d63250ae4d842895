//! Structured logging: `RUST_LOG`-style filtering, text or JSON lines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are ignored (tests start many gateways).
pub fn init(level: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
