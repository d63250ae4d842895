//! `adminctl config check`: validate the configuration and say what is missing, printing no secret.

use super::Context;
use freerouter::catalog::resolve_providers;

pub fn check(ctx: &Context) -> anyhow::Result<()> {
    let providers = resolve_providers(&ctx.settings, &ctx.source);
    let usable: Vec<&str> = providers
        .values()
        .filter(|p| p.usable())
        .map(|p| p.name.as_str())
        .collect();
    println!("configuration is valid");
    println!("database: {}", ctx.settings.storage.database);
    println!("listen: {}", ctx.settings.server.listen);
    println!(
        "client keys: {}; admin token: {}",
        if ctx.settings.auth.api_keys.is_empty() {
            "none (open)".to_string()
        } else {
            format!("{} configured", ctx.settings.auth.api_keys.len())
        },
        if ctx.settings.auth.admin_token.is_some() {
            "configured"
        } else {
            "none (HTTP admin is read-only)"
        }
    );
    if usable.is_empty() {
        let mut vars: Vec<String> = providers
            .values()
            .flat_map(|p| p.key_env.iter().take(1).cloned())
            .collect();
        vars.sort();
        vars.dedup();
        anyhow::bail!("no provider has a key: set one of {}", vars.join(", "));
    }
    for p in providers.values().filter(|p| p.usable()) {
        println!(
            "provider {}: {} key(s){}",
            p.name,
            p.keys.len(),
            if p.keyless { ", keyless" } else { "" }
        );
    }
    Ok(())
}
