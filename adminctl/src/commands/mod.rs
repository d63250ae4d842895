//! One module per subcommand.

pub mod config;
pub mod diagnosis;
pub mod health;
pub mod models;
pub mod ping;
pub mod providers;
pub mod quota;
pub mod stats;
pub mod store;

use freerouter::config::{ConfigSource, Settings};
use freerouter::store::Store;

/// What every command may need: the store, and the configuration it was found through.
pub struct Context {
    pub store: Store,
    pub settings: Settings,
    pub source: ConfigSource,
    pub json: bool,
    /// `--yes`: destructive actions go ahead without asking.
    pub yes: bool,
}

impl Context {
    /// Refuses a destructive action unless `--yes` was given.
    pub fn confirm(&self, what: &str) -> anyhow::Result<()> {
        if self.yes {
            Ok(())
        } else {
            anyhow::bail!("{what} is destructive: add --yes to go ahead")
        }
    }
}
