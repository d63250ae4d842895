//! `adminctl`: FreeRouter's command line over the shared SQLite file. For now `models list`;
//! the full command set is its own issue.

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
    Models(ModelsCommand),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Every route in rank order.
    List,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let path = match cli.db {
        Some(path) => path,
        None => {
            Settings::load(&ConfigSource::from_process()?)?
                .storage
                .database
        }
    };
    let store = Store::open(&path, Duration::from_secs(5)).await?;
    match cli.command {
        Command::Models(ModelsCommand::List) => {
            let routes = store.list_routes().await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&routes)?);
            } else {
                println!(
                    "{:>5}  {:<8}  {:<45}  {:>9}  tags",
                    "rank", "enabled", "route", "context"
                );
                for r in routes {
                    println!(
                        "{:>5}  {:<8}  {:<45}  {:>9}  {}",
                        r.rank,
                        if r.enabled { "yes" } else { "no" },
                        r.route_id,
                        r.context_window_tokens,
                        r.tags.join(",")
                    );
                }
            }
        }
    }
    store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
