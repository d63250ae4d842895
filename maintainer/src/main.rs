//! `freerouter-maintainer`: load and validate the configuration, then run the jobs until a signal.

use freerouter::config::{ConfigSource, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let source = ConfigSource::from_process()?;
    let settings = Settings::load(&source)?;
    freerouter::telemetry::init(&settings.log.level, settings.log.json);
    freerouter_maintainer::run(settings, source).await
}
