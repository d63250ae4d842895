//! `adminctl store copy --from … --to …`: moves a store to another engine (a SQLite file's catalog
//! and state into a new PostgreSQL database, typically) before pointing the gateways at it.

use clap::Subcommand;
use freerouter::store::{Database, Store};
use std::time::Duration;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy every route, health record, quota lease and window, suggestion, verdict, stored
    /// response and request-log row into an empty database. Stop the gateways first: what they
    /// write meanwhile would not be copied.
    Copy {
        /// The store to read: a SQLite file or a postgres:// URL.
        #[arg(long)]
        from: Database,
        /// The empty store to fill: a postgres:// URL or a SQLite file (created if missing).
        #[arg(long)]
        to: Database,
    },
}

pub async fn run(command: &StoreCommand, json: bool) -> anyhow::Result<()> {
    match command {
        StoreCommand::Copy { from, to } => {
            anyhow::ensure!(from != to, "--from and --to name the same store");
            let source = Store::open(from, Duration::from_secs(5)).await?;
            let target = Store::open(to, Duration::from_secs(5)).await?;
            let copied = source.copy_into(&target).await?;
            if json {
                let tables: serde_json::Map<String, serde_json::Value> = copied
                    .tables
                    .iter()
                    .map(|(table, rows)| (table.clone(), (*rows).into()))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"from": from.to_string(), "to": to.to_string(), "rows": tables})
                );
            } else {
                println!("copied {from} into {to}:");
                for (table, rows) in &copied.tables {
                    println!("  {table}: {rows} rows");
                }
            }
            Ok(())
        }
    }
}
