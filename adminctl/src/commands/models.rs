//! `adminctl models …`: the ranked catalog — list, show, accept or reject a discovered route,
//! enable, disable, rank, auto-rank, reset to defaults.

use super::Context;
use crate::output;
use clap::Subcommand;
use freerouter::admin::{catalog, stats};
use freerouter::maintenance::apply::{accept_route, reject_route};
use freerouter::store::{SuggestionKind, SuggestionStatus};
use freerouter::time::now_ms;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Every route in rank order, and the routes waiting for a decision.
    List,
    /// One route in full: catalog entry, health, pending suggestions.
    Show {
        /// The route id, e.g. `groq/llama-3.3-70b-versatile`.
        route: String,
    },
    /// Enable a discovered route (its pending add_route suggestion is applied).
    Accept {
        /// The route id, e.g. `openrouter/new-model:free`.
        route: String,
    },
    /// Reject a discovered route (the suggestion is closed and the disabled route removed).
    Reject {
        /// The route id, e.g. `groq/llama-3.3-70b-versatile`.
        route: String,
    },
    /// Let requests be routed to a route.
    Enable {
        /// The route id, e.g. `groq/llama-3.3-70b-versatile`.
        route: String,
    },
    /// Stop routing requests to a route (it stays in the catalog).
    Disable {
        /// The route id, e.g. `groq/llama-3.3-70b-versatile`.
        route: String,
    },
    /// Set a route's rank (1 is tried first).
    Rank {
        /// The route id, e.g. `groq/llama-3.3-70b-versatile`.
        route: String,
        /// The new rank: 1 is tried first; equal ranks go by route id.
        rank: i64,
    },
    /// Recompute ranks from capability and the measured success and speed; says what moved.
    AutoRank,
    /// Put the built-in routes back as shipped (accepted and your own routes are kept).
    Reset,
}

pub async fn run(ctx: &Context, command: ModelsCommand) -> anyhow::Result<()> {
    let now = now_ms();
    let store = &ctx.store;
    match command {
        ModelsCommand::List => list(ctx).await,
        ModelsCommand::Show { route } => {
            let Some(found) = store.get_route(&route).await? else {
                anyhow::bail!("no route {route:?} in the catalog (see `adminctl models list`)");
            };
            let health = store
                .load_health(now)
                .await?
                .routes
                .into_iter()
                .find(|h| h.route_id == route);
            let suggestions: Vec<_> = store
                .suggestions(Some(SuggestionStatus::Pending))
                .await?
                .into_iter()
                .filter(|s| s.route_id == route)
                .collect();
            output::json(
                &serde_json::json!({"route": found, "health": health, "pending": suggestions}),
            )
        }
        ModelsCommand::Accept { route } => {
            let suggestion = accept_route(store, &route, now).await?;
            println!(
                "accepted {route} (suggestion {}): it is enabled and will be routed to",
                suggestion.id
            );
            Ok(())
        }
        ModelsCommand::Reject { route } => {
            let suggestion = reject_route(store, &route, now).await?;
            println!("rejected {route} (suggestion {})", suggestion.id);
            Ok(())
        }
        ModelsCommand::Enable { route } => {
            catalog::set_enabled(store, &route, true, now).await?;
            println!("{route} enabled");
            Ok(())
        }
        ModelsCommand::Disable { route } => {
            catalog::set_enabled(store, &route, false, now).await?;
            println!("{route} disabled");
            Ok(())
        }
        ModelsCommand::Rank { route, rank } => {
            catalog::set_rank(store, &route, rank, now).await?;
            println!("{route} now has rank {rank}");
            Ok(())
        }
        ModelsCommand::AutoRank => {
            let measures = stats::route_measures(store, now).await?;
            let changes = catalog::auto_rank(store, &measures, now).await?;
            if ctx.json {
                return output::json(&changes);
            }
            if changes.is_empty() {
                println!("no route moved");
            }
            for c in changes {
                println!(
                    "{:<50} {:>5} -> {:<5} (score {:.3})",
                    c.route_id, c.from, c.to, c.score
                );
            }
            Ok(())
        }
        ModelsCommand::Reset => {
            ctx.confirm("resetting the catalog to its defaults")?;
            let replaced = catalog::reset_to_defaults(store, &ctx.settings, now).await?;
            println!(
                "default routes reset ({replaced} replaced); accepted and your own routes kept"
            );
            Ok(())
        }
    }
}

async fn list(ctx: &Context) -> anyhow::Result<()> {
    let routes = ctx.store.list_routes().await?;
    let pending: Vec<_> = ctx
        .store
        .suggestions(Some(SuggestionStatus::Pending))
        .await?
        .into_iter()
        .filter(|s| s.kind == SuggestionKind::AddRoute)
        .collect();
    if ctx.json {
        return output::json(&serde_json::json!({"routes": routes, "pending": pending}));
    }
    let rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            vec![
                r.rank.to_string(),
                if r.enabled { "yes".into() } else { "no".into() },
                r.route_id.clone(),
                r.context_window_tokens.to_string(),
                r.tags.join(","),
            ]
        })
        .collect();
    output::table(&["rank", "enabled", "route", "context", "tags"], &rows);
    if !pending.is_empty() {
        println!("\nwaiting for a decision (adminctl models accept|reject ROUTE):");
        for s in pending {
            println!("  {}", s.route_id);
        }
    }
    Ok(())
}
