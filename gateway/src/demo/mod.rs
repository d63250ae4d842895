//! Demo mode (`--demo`, `FREEROUTER_DEMO=1`, `demo.enabled`): a few simulated free tiers served
//! in-process, so a newcomer without a single provider key sees what the gateway does — ranking,
//! fallback, quota refusals, the console filling up — before signing up anywhere.
//!
//! The tiers ([`tiers::TIERS`]) are an OpenAI-compatible upstream on a loopback port of this
//! process, reached through the same adapter, HTTP client, rate-limit headers and failure table as a
//! real provider. They sit under one provider, `demo`, so every route reads `demo/…` in
//! `/v1/models`, the console (which also shows a banner) and the logs. Demo mode keeps its own
//! database file (`freerouter-demo.db` beside the configured one) and uses only these routes:
//! the real catalog, its quotas and health are never touched.

mod limits;
pub mod tiers;
mod upstream;

use freerouter::config::{ConfigSource, ProviderSettings, Secret, Settings};
use freerouter::store::Database;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::task::JoinHandle;

/// The provider the simulated tiers are served under: routes read `demo/<model>`.
pub const PROVIDER: &str = "demo";

/// What `freerouter-gateway --help` prints.
pub const USAGE: &str = "\
usage: freerouter-gateway [--demo]

Serves FreeRouter's OpenAI-compatible endpoint (http://127.0.0.1:8000/v1 by default) and its console.
Configured by freerouter.toml (FREEROUTER_CONFIG), FREEROUTER__SECTION__KEY variables and provider
keys (GROQ_API_KEY, GEMINI_API_KEY, ...) from the environment or .env.

  --demo    simulated free tiers (demo/...) served in-process, on a database of their own:
            see FreeRouter route without any key (also FREEROUTER_DEMO=1)";

/// The simulated upstream, serving until dropped.
pub struct DemoUpstream {
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl DemoUpstream {
    /// Serves the tiers on 127.0.0.1 and an ephemeral port.
    pub async fn start() -> std::io::Result<Self> {
        let (addr, server) = upstream::spawn().await?;
        Ok(Self { addr, server })
    }

    /// `http://127.0.0.1:PORT/v1`: the demo provider's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for DemoUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Whether demo mode is asked for: `--demo` among the arguments, or `FREEROUTER_DEMO` set to `1`,
/// `true` or `yes`. Any other argument is refused (the gateway takes no other).
pub fn requested(
    args: impl IntoIterator<Item = String>,
    source: &ConfigSource,
) -> Result<bool, String> {
    let mut demo = source
        .var("FREEROUTER_DEMO")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    for arg in args {
        match arg.as_str() {
            "--demo" => demo = true,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; freerouter-gateway takes only --demo (simulated free \
                     tiers, no keys needed); everything else is configured in freerouter.toml or FREEROUTER__… variables (--help)"
                ));
            }
        }
    }
    Ok(demo)
}

/// Turns `settings` into demo settings: the demo provider at `base_url` and its routes only (the
/// built-in catalog not seeded, routes declared in the file left out), on its own database file.
pub fn apply(settings: &mut Settings, base_url: &str) {
    // A demo never writes into a real store: beside a SQLite file, or in ./data for a server.
    let real = settings
        .storage
        .database
        .sqlite_path()
        .unwrap_or(Path::new("./data/freerouter.db"));
    settings.storage.database = Database::Sqlite(demo_database(real));
    settings.catalog.defaults = false;
    settings.routes = tiers::routes();
    settings.providers.insert(
        PROVIDER.to_string(),
        ProviderSettings {
            base_url: Some(base_url.to_string()),
            api_keys: vec![Secret::new("demo-key")],
            ..ProviderSettings::default()
        },
    );
    settings.routing.default_embedding_model = None;
}

/// `data/freerouter.db` → `data/freerouter-demo.db`.
pub fn demo_database(real: &Path) -> PathBuf {
    let stem = real
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("freerouter");
    let name = match real.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("{stem}-demo.{ext}"),
        None => format!("{stem}-demo"),
    };
    real.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_database_sits_beside_the_real_one() {
        assert_eq!(
            demo_database(Path::new("./data/freerouter.db")),
            PathBuf::from("./data/freerouter-demo.db")
        );
        assert_eq!(
            demo_database(Path::new("/data/state")),
            PathBuf::from("/data/state-demo")
        );
    }

    #[test]
    fn demo_mode_is_asked_for_by_flag_or_variable_and_nothing_else_is_taken() {
        let none = ConfigSource::default();
        assert_eq!(requested(Vec::<String>::new(), &none), Ok(false));
        assert_eq!(requested(["--demo".to_string()], &none), Ok(true));
        let var = ConfigSource::default().with_var("FREEROUTER_DEMO", "1");
        assert_eq!(requested(Vec::<String>::new(), &var), Ok(true));
        let off = ConfigSource::default().with_var("FREEROUTER_DEMO", "0");
        assert_eq!(requested(Vec::<String>::new(), &off), Ok(false));
        assert!(requested(["--dmeo".to_string()], &none).is_err());
    }
}
