//! `adminctl providers status`: which providers can serve, their keys (fingerprints only) and use.

use super::Context;
use crate::output;
use clap::Subcommand;
use freerouter::admin::providers::status;
use freerouter::catalog::resolve_providers;
use freerouter::time::now_ms;

#[derive(Subcommand)]
pub enum ProvidersCommand {
    /// Every provider: usable or what it is missing, routes, keys.
    Status,
}

pub async fn run(ctx: &Context, command: ProvidersCommand) -> anyhow::Result<()> {
    match command {
        ProvidersCommand::Status => {
            let providers = resolve_providers(&ctx.settings, &ctx.source);
            let statuses = status(&ctx.store, &providers, None, now_ms()).await?;
            if ctx.json {
                return output::json(&statuses);
            }
            let rows: Vec<Vec<String>> = statuses
                .iter()
                .map(|p| {
                    vec![
                        if p.trial {
                            format!("{} (trial credit)", p.name)
                        } else {
                            p.name.clone()
                        },
                        if p.usable {
                            "yes".into()
                        } else {
                            format!("no: set {}", p.missing.join(" + "))
                        },
                        format!("{}/{}", p.enabled_routes, p.routes),
                        p.keys
                            .iter()
                            .map(|k| {
                                format!("{}{}", k.key_id, if k.invalid { " (refused)" } else { "" })
                            })
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]
                })
                .collect();
            output::table(&["provider", "usable", "routes on", "keys"], &rows);
            Ok(())
        }
    }
}
