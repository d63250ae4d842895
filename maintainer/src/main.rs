//! `freerouter-maintainer`: load and validate the configuration, then run the jobs until a signal.

use freerouter::catalog::load_settings;
use freerouter::config::ConfigSource;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let source = ConfigSource::from_process()?;
    let settings = load_settings(&source)?;
    freerouter::telemetry::init(&settings.log.level, settings.log.json);
    freerouter_maintainer::run(settings, source).await
}
