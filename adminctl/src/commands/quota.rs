//! `adminctl quota show`: each key's use against its provider-wide limits.

use super::Context;
use crate::output;
use clap::Subcommand;
use freerouter::admin::providers::status;
use freerouter::catalog::resolve_providers;
use freerouter::time::now_ms;

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Requests and tokens used this minute (sliding) and today, per key.
    Show,
}

fn of(used: u64, limit: Option<u64>) -> String {
    match limit {
        Some(limit) => format!("{used}/{limit}"),
        None => used.to_string(),
    }
}

pub async fn run(ctx: &Context, command: QuotaCommand) -> anyhow::Result<()> {
    match command {
        QuotaCommand::Show => {
            let providers = resolve_providers(&ctx.settings, &ctx.source);
            let statuses = status(&ctx.store, &providers, None, now_ms()).await?;
            if ctx.json {
                return output::json(&statuses);
            }
            let mut rows = Vec::new();
            for p in statuses.iter().filter(|p| !p.keys.is_empty()) {
                for k in &p.keys {
                    rows.push(vec![
                        p.name.clone(),
                        k.key_id.clone(),
                        of(k.usage.minute_requests, p.limits.rpm),
                        of(k.usage.day_requests, p.limits.rpd),
                        of(k.usage.minute_tokens, p.limits.tpm),
                        of(k.usage.day_tokens, p.limits.tpd),
                    ]);
                }
            }
            output::table(
                &[
                    "provider",
                    "key",
                    "requests/min",
                    "requests/day",
                    "tokens/min",
                    "tokens/day",
                ],
                &rows,
            );
            Ok(())
        }
    }
}
