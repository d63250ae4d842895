//! `adminctl health reset [ROUTE]`: forget cooldowns and failure counts; running gateways reload.

use super::Context;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum HealthCommand {
    /// Forget a route's health (all routes without ROUTE), its key cooldowns included.
    Reset {
        /// The route id, e.g. `groq/llama-3.3-70b-versatile`; without it, every route (needs --yes).
        route: Option<String>,
    },
}

pub async fn run(ctx: &Context, command: HealthCommand) -> anyhow::Result<()> {
    match command {
        HealthCommand::Reset { route } => {
            if route.is_none() {
                ctx.confirm("resetting the health of every route")?;
            }
            let cleared = ctx.store.reset_health(route.as_deref()).await?;
            if ctx.json {
                return crate::output::json(
                    &serde_json::json!({"reset": route, "routes_cleared": cleared}),
                );
            }
            println!(
                "health reset for {} ({cleared} route records cleared); gateways pick it up within a second",
                route.as_deref().unwrap_or("every route")
            );
            Ok(())
        }
    }
}
