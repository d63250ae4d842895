//! `adminctl stats`: requests, success rate, fallbacks by reason, tokens by provider (1h, 24h, 7d).

use super::Context;
use crate::output;
use freerouter::admin::stats::collect;
use freerouter::time::now_ms;

pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let windows = collect(&ctx.store, now_ms()).await?;
    if ctx.json {
        return output::json(&windows);
    }
    let rows: Vec<Vec<String>> = windows
        .iter()
        .map(|w| {
            vec![
                w.window.clone(),
                w.requests.to_string(),
                format!("{:.1}%", w.success_rate * 100.0),
                w.fell_back.to_string(),
                w.fallbacks_by_reason
                    .iter()
                    .map(|(reason, n)| format!("{reason}:{n}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                w.tokens_by_provider
                    .iter()
                    .map(|(p, (i, o))| format!("{p}:{i}+{o}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    output::table(
        &[
            "window",
            "requests",
            "success",
            "fell back",
            "fallbacks by reason",
            "tokens in+out by provider",
        ],
        &rows,
    );
    Ok(())
}
