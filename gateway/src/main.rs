//! `freerouter-gateway [--demo]`: load and validate the configuration, then serve until a signal.

use freerouter::catalog::load_settings;
use freerouter::config::ConfigSource;

/// mimalloc rather than glibc's malloc: the request path allocates and frees small buffers across
/// two worker threads, where glibc's arenas spent ~15 % of the gateway's CPU (and trimmed and grew
/// their heaps back with `mprotect` under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("{}", freerouter_gateway::demo::USAGE);
        return Ok(());
    }
    let mut source = ConfigSource::from_process()?;
    if freerouter_gateway::demo::requested(std::env::args().skip(1), &source)
        .map_err(anyhow::Error::msg)?
    {
        source
            .vars
            .insert("FREEROUTER__DEMO__ENABLED".into(), "true".into());
    }
    let settings = load_settings(&source)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.server.runtime_workers(cores))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        freerouter::telemetry::init(&settings.log.level, settings.log.json);
        freerouter_gateway::run(settings, source).await
    })
}
