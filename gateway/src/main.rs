//! `freerouter-gateway`: load and validate the configuration, then serve until a signal.

use freerouter::config::{ConfigSource, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let source = ConfigSource::from_process()?;
    let settings = Settings::load(&source)?;
    freerouter::telemetry::init(&settings.log.level, settings.log.json);
    freerouter_gateway::run(settings, source).await
}
