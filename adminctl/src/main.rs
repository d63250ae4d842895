//! `adminctl`: FreeRouter's command line over the shared SQLite file.

mod commands;

use clap::{Parser, Subcommand};
use freerouter::config::{ConfigSource, Settings};
use freerouter::store::Store;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "adminctl",
    version,
    about = "Manage FreeRouter's catalog from the shell"
)]
struct Cli {
    /// The SQLite file (default: the configured `storage.database`).
    #[arg(long, global = true, env = "FREEROUTER_DB")]
    db: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The route catalog.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
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
    let path = match cli.db {
        Some(path) => path,
        None => {
            Settings::load(&ConfigSource::from_process()?)?
                .storage
                .database
        }
    };
    let store = Store::open(&path, Duration::from_secs(5)).await?;
    let result = match cli.command {
        Command::Models(command) => commands::models::run(&store, command, cli.json).await,
    };
    store.close().await;
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
