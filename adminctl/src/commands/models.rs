//! `adminctl models …`: list the catalog, accept or reject a discovered route.

use clap::Subcommand;
use freerouter::maintenance::apply::{accept_route, reject_route};
use freerouter::store::{Store, SuggestionKind, SuggestionStatus};
use freerouter::time::now_ms;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Every route in rank order, and the routes waiting for a decision.
    List,
    /// Enable a discovered route (its pending add_route suggestion is applied).
    Accept {
        /// The route id, e.g. `openrouter/new-model:free`.
        route: String,
    },
    /// Reject a discovered route (the suggestion is closed and the disabled route removed).
    Reject { route: String },
    /// Let requests be routed to a route.
    Enable { route: String },
    /// Stop routing requests to a route (it stays in the catalog).
    Disable { route: String },
}

pub async fn run(store: &Store, command: ModelsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        ModelsCommand::List => list(store, json).await,
        ModelsCommand::Accept { route } => {
            let suggestion = accept_route(store, &route, now_ms()).await?;
            println!(
                "accepted {route} (suggestion {}): it is enabled and will be routed to",
                suggestion.id
            );
            Ok(())
        }
        ModelsCommand::Enable { route } => set_enabled(store, &route, true).await,
        ModelsCommand::Disable { route } => set_enabled(store, &route, false).await,
        ModelsCommand::Reject { route } => {
            let suggestion = reject_route(store, &route, now_ms()).await?;
            println!("rejected {route} (suggestion {})", suggestion.id);
            Ok(())
        }
    }
}

async fn set_enabled(store: &Store, route: &str, enabled: bool) -> anyhow::Result<()> {
    if !store.set_route_enabled(route, enabled, now_ms()).await? {
        anyhow::bail!("no route {route:?} in the catalog (see `adminctl models list`)");
    }
    println!("{route} {}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}

async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let routes = store.list_routes().await?;
    let pending: Vec<_> = store
        .suggestions(Some(SuggestionStatus::Pending))
        .await?
        .into_iter()
        .filter(|s| s.kind == SuggestionKind::AddRoute)
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"routes": routes, "pending": pending})
            )?
        );
        return Ok(());
    }
    println!(
        "{:>5}  {:<8}  {:<50}  {:>9}  tags",
        "rank", "enabled", "route", "context"
    );
    for r in &routes {
        println!(
            "{:>5}  {:<8}  {:<50}  {:>9}  {}",
            r.rank,
            if r.enabled { "yes" } else { "no" },
            r.route_id,
            r.context_window_tokens,
            r.tags.join(",")
        );
    }
    if !pending.is_empty() {
        println!("\nwaiting for a decision (adminctl models accept|reject ROUTE):");
        for s in pending {
            println!("  {}  (seen {})", s.route_id, s.seen_ms);
        }
    }
    Ok(())
}
