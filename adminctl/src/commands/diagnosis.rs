//! `adminctl diagnosis show|run|apply`: the maintainer's suggestions, a diagnosis run now, applying one.

use super::Context;
use crate::output;
use clap::Subcommand;
use freerouter::catalog::resolve_providers;
use freerouter::maintenance::Maintenance;
use freerouter::maintenance::apply::apply;
use freerouter::store::SuggestionStatus;
use freerouter::time::now_ms;
use std::time::Duration;

#[derive(Subcommand)]
pub enum DiagnosisCommand {
    /// Suggestions (pending by default).
    Show {
        /// Every suggestion, decided ones included.
        #[arg(long)]
        all: bool,
    },
    /// Run endpoint diagnosis now (calls the providers' /models and probes).
    Run,
    /// Apply a pending suggestion by id (`remove_route`, `clear_stale`, or `add_route`).
    Apply {
        /// The suggestion's id, as `adminctl diagnosis show` lists it.
        id: i64,
    },
}

pub async fn run(ctx: &Context, command: DiagnosisCommand) -> anyhow::Result<()> {
    match command {
        DiagnosisCommand::Show { all } => {
            let status = (!all).then_some(SuggestionStatus::Pending);
            let suggestions = ctx.store.suggestions(status).await?;
            if ctx.json {
                return output::json(&suggestions);
            }
            let rows: Vec<Vec<String>> = suggestions
                .iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        s.kind.as_str().to_string(),
                        s.status.as_str().to_string(),
                        s.route_id.clone(),
                        s.decided_by.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["id", "kind", "status", "route", "decided by"], &rows);
            Ok(())
        }
        DiagnosisCommand::Run => {
            let maintenance = Maintenance {
                store: ctx.store.clone(),
                providers: resolve_providers(&ctx.settings, &ctx.source),
                http: freerouter::providers::http_client(Duration::from_millis(
                    ctx.settings.routing.connect_timeout_ms,
                ))?,
                settings: ctx.settings.maintainer.clone(),
            };
            let report = maintenance.diagnose(now_ms()).await?;
            if ctx.json {
                return output::json(&report);
            }
            println!(
                "checked {} provider(s); unreachable: {}",
                report.providers_checked.len(),
                report.providers_unreachable.join(", ")
            );
            println!(
                "confirmed {} route(s), inconclusive {}",
                report.confirmed.len(),
                report.inconclusive.len()
            );
            for (kind, route) in &report.suggested {
                println!("suggested {kind} {route}");
            }
            for (kind, route) in &report.applied {
                println!("applied   {kind} {route}");
            }
            Ok(())
        }
        DiagnosisCommand::Apply { id } => {
            let pending = ctx
                .store
                .suggestions(Some(SuggestionStatus::Pending))
                .await?;
            let Some(suggestion) = pending.into_iter().find(|s| s.id == id) else {
                anyhow::bail!("no pending suggestion {id} (see `adminctl diagnosis show`)");
            };
            apply(&ctx.store, &suggestion, "human", now_ms()).await?;
            println!(
                "applied {} {}",
                suggestion.kind.as_str(),
                suggestion.route_id
            );
            Ok(())
        }
    }
}
