//! `freerouter-maintainer`: for now it opens the shared database (applying migrations, seeding the
//! catalog) and waits for a signal; its jobs (diagnosis, supervisor, retention) are their own issue.

use freerouter::catalog::live::bootstrap;
use freerouter::config::{ConfigSource, Settings};
use freerouter::shutdown::{CancellationToken, cancel_on_signal};
use freerouter::store::Store;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let source = ConfigSource::from_process()?;
    let settings = Settings::load(&source)?;
    freerouter::telemetry::init(&settings.log.level, settings.log.json);
    let store = Store::open(
        &settings.storage.database,
        Duration::from_millis(settings.storage.busy_timeout_ms),
    )
    .await?;
    bootstrap(&store, &settings, freerouter::time::now_ms()).await?;
    tracing::info!(database = %settings.storage.database.display(), "maintainer started (no jobs yet)");
    let token = CancellationToken::new();
    cancel_on_signal(token.clone());
    token.cancelled().await;
    store.close().await;
    Ok(())
}
