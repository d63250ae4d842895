//! `adminctl`: FreeRouter's command line over the shared SQLite file. It works whether the gateway
//! runs or not; running gateways pick every change up within about a second.

mod commands;
mod output;

use clap::{Parser, Subcommand};
use commands::Context;
use freerouter::catalog::live::bootstrap;
use freerouter::catalog::load_settings;
use freerouter::config::ConfigSource;
use freerouter::store::{Database, Store};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "adminctl",
    version,
    about = "Manage FreeRouter's catalog, health and quotas from the shell",
    long_about = "Manage FreeRouter's catalog, health and quotas from the shell.\n\n\
        adminctl works on the same store as the gateway and the maintainer, a SQLite file or a\n\
        PostgreSQL URL (found through freerouter.toml / FREEROUTER__STORAGE__DATABASE, or --db),\n\
        whether they run or not."
)]
struct Cli {
    /// The store: a SQLite file or a postgres:// URL (default: the configured `storage.database`).
    #[arg(long, global = true, env = "FREEROUTER_DB")]
    db: Option<Database>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Go ahead with destructive actions without asking.
    #[arg(long, global = true)]
    yes: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The route catalog: list, show, accept, reject, enable, disable, rank, auto-rank, reset.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
    /// Route health.
    #[command(subcommand)]
    Health(commands::health::HealthCommand),
    /// The maintainer's endpoint diagnosis: suggestions, a run now, applying one.
    #[command(subcommand)]
    Diagnosis(commands::diagnosis::DiagnosisCommand),
    /// Providers: keys (fingerprints only), usability, routes.
    #[command(subcommand)]
    Providers(commands::providers::ProvidersCommand),
    /// Quota use per key.
    #[command(subcommand)]
    Quota(commands::quota::QuotaCommand),
    /// Traffic over the last hour, day and week.
    Stats,
    /// The store itself: copy it to another engine (SQLite to PostgreSQL).
    #[command(subcommand)]
    Store(commands::store::StoreCommand),
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Exit 0 when a FreeRouter process answers 2xx at URL (a healthcheck that needs no curl).
    Ping(commands::ping::PingOpts),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate everything and say what is missing (no secret is printed).
    Check,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli).await {
        eprintln!("adminctl: {error:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // A healthcheck touches neither the configuration nor the database.
    if let Command::Ping(opts) = &cli.command {
        return commands::ping::run(opts);
    }
    // A copy names both stores itself, and must not seed the catalog into the empty target.
    if let Command::Store(command) = &cli.command {
        return commands::store::run(command, cli.json).await;
    }
    let source = ConfigSource::from_process()?;
    let settings = load_settings(&source)?;
    let path = cli
        .db
        .clone()
        .unwrap_or_else(|| settings.storage.database.clone());
    let store = Store::open(&path, Duration::from_secs(5)).await?;
    // The same catalog the gateway would see: defaults seeded once, declared routes present.
    bootstrap(&store, &settings, freerouter::time::now_ms()).await?;
    let ctx = Context {
        store,
        settings,
        source,
        json: cli.json,
        yes: cli.yes,
    };
    let result = match cli.command {
        Command::Models(command) => commands::models::run(&ctx, command).await,
        Command::Health(command) => commands::health::run(&ctx, command).await,
        Command::Diagnosis(command) => commands::diagnosis::run(&ctx, command).await,
        Command::Providers(command) => commands::providers::run(&ctx, command).await,
        Command::Quota(command) => commands::quota::run(&ctx, command).await,
        Command::Stats => commands::stats::run(&ctx).await,
        Command::Config(ConfigCommand::Check) => commands::config::check(&ctx),
        Command::Ping(opts) => commands::ping::run(&opts),
        Command::Store(command) => commands::store::run(&command, ctx.json).await,
    };
    ctx.store.close().await;
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
