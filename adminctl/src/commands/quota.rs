//! `adminctl quota show`: per key and window, what is left and when it is whole again, and the
//! keys resting; `adminctl quota forecast`: the pool's requests left today and the next refill.

use super::Context;
use crate::output;
use clap::Subcommand;
use freerouter::admin::capacity::{Capacity, capacity, forecast};
use freerouter::catalog::resolve_providers;
use freerouter::routing::{utc_moment, utc_time as utc};
use freerouter::time::{EpochMs, now_ms};

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Each key's limited windows (sliding minute, the provider's day): left of the limit, and
    /// when it is whole again; then the keys resting and until when.
    Show,
    /// The pool: requests left today across every key, and when the next refill comes.
    Forecast,
}

/// "in 5h 3m", "in 42s".
fn after(at: EpochMs, now: EpochMs) -> String {
    let s = ((at - now).max(0) + 999) / 1000;
    match s {
        0..60 => format!("in {s}s"),
        60..3600 => format!("in {}m {}s", s / 60, s % 60),
        _ => format!("in {}h {}m", s / 3600, s / 60 % 60),
    }
}

fn on(scope: &str) -> String {
    if scope == "*" {
        "every route".to_string()
    } else {
        scope.to_string()
    }
}

async fn read(
    ctx: &Context,
    now: EpochMs,
) -> anyhow::Result<(Capacity, freerouter::admin::capacity::Forecast)> {
    let providers = resolve_providers(&ctx.settings, &ctx.source);
    let routes: Vec<_> = ctx
        .store
        .list_routes()
        .await?
        .into_iter()
        .map(|r| (r.provider, r.route_id, r.limits))
        .collect();
    let capacity = capacity(&ctx.store, &providers, &routes, now).await?;
    let forecast = forecast(&capacity, &providers, now);
    Ok((capacity, forecast))
}

pub async fn run(ctx: &Context, command: QuotaCommand) -> anyhow::Result<()> {
    let now = now_ms();
    let (capacity, forecast) = read(ctx, now).await?;
    match command {
        QuotaCommand::Show => {
            if ctx.json {
                return output::json(&capacity);
            }
            let mut rows: Vec<Vec<String>> = capacity
                .windows
                .iter()
                .map(|w| {
                    let span = match (w.window, w.window_hours) {
                        ("day", _) => "today".to_string(),
                        ("month", _) => "this month".to_string(),
                        ("rolling", Some(hours)) => format!("in the last {hours} h"),
                        _ => "this minute".to_string(),
                    };
                    vec![
                        w.provider.clone(),
                        w.key_id.clone(),
                        on(&w.scope),
                        format!("{} {span}", w.counts),
                        format!("{}/{} left", w.left, w.limit),
                        match w.full_at_ms {
                            Some(at) => {
                                format!(
                                    "back to {} {} ({})",
                                    w.limit,
                                    utc_moment(at, now),
                                    after(at, now)
                                )
                            }
                            None => "whole".to_string(),
                        },
                    ]
                })
                .collect();
            rows.extend(capacity.unlimited_keys.iter().map(|(provider, key)| {
                vec![
                    provider.clone(),
                    key.clone(),
                    on("*"),
                    "-".to_string(),
                    "no limits".to_string(),
                    String::new(),
                ]
            }));
            output::table(
                &["provider", "key", "on", "window", "left", "returns"],
                &rows,
            );
            if !capacity.resting.is_empty() {
                println!();
                let rows: Vec<Vec<String>> = capacity
                    .resting
                    .iter()
                    .map(|r| {
                        vec![
                            r.provider.clone(),
                            r.key_id.clone(),
                            on(&r.scope),
                            r.reason.clone(),
                            format!(
                                "{} ({})",
                                utc_moment(r.until_ms, now),
                                after(r.until_ms, now)
                            ),
                        ]
                    })
                    .collect();
                output::table(&["provider", "key", "resting on", "why", "until"], &rows);
            }
            Ok(())
        }
        QuotaCommand::Forecast => {
            if ctx.json {
                return output::json(&forecast);
            }
            let keys: usize = forecast.providers.iter().map(|p| p.keys).sum();
            println!(
                "{} requests left today across {keys} keys{}",
                forecast.requests_left_today,
                if forecast.unlimited_providers.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", besides {} (no daily limit)",
                        forecast.unlimited_providers.join(", ")
                    )
                }
            );
            match forecast.next_refill_ms {
                Some(at) => println!("next refill at {} ({})", utc(at), after(at, now)),
                None => println!("nothing is spent: no refill pending"),
            }
            let rows: Vec<Vec<String>> = forecast
                .providers
                .iter()
                .map(|p| {
                    vec![
                        p.provider.clone(),
                        p.keys.to_string(),
                        p.requests_left_today
                            .map_or("no daily limit".to_string(), |n| n.to_string()),
                        utc(p.day_turns_ms),
                        p.soonest_back_ms.map_or(String::new(), |at| {
                            format!("{} ({})", utc(at), after(at, now))
                        }),
                    ]
                })
                .collect();
            println!();
            output::table(
                &[
                    "provider",
                    "keys",
                    "requests left today",
                    "day turns",
                    "a resting key back",
                ],
                &rows,
            );
            Ok(())
        }
    }
}
