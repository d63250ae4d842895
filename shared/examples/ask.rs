//! Asks FreeRouter's router a question from a Rust program — no gateway running — once whole and
//! once streamed, and says which route served each answer.
//!
//! ```sh
//! GROQ_API_KEY=gsk_… cargo run -p freerouter --example ask -- "Why is the sky blue?"
//! ```
//!
//! The configuration is read as the gateway reads it: `FREEROUTER_CONFIG` (else `./freerouter.toml`
//! when present), `FREEROUTER__…` variables, provider keys from the environment or `.env`. The
//! SQLite file (`storage.database`) may be the one a gateway is using: quota is shared.

use freerouter::{Request, Router};
use futures::StreamExt;
use std::io::Write;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut question = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if question.trim().is_empty() {
        question = "Say hello in three languages.".to_string();
    }
    let router = Router::from_env().await?;

    let result = ask(&router, &question).await;
    // Settles the quota leases (a gateway on the same file gets back what was not used) and
    // flushes the request log, whatever happened.
    router.shutdown().await;
    result
}

async fn ask(router: &Router, question: &str) -> Result<(), Box<dyn std::error::Error>> {
    let answer = router.chat(Request::user(question)).await?;
    println!("{}", answer.text());
    println!(
        "-- served by {} ({} attempt(s): {})",
        answer.served.route_id, answer.served.attempts, answer.served.trail
    );

    let mut stream = router.chat_stream(Request::user(question)).await?;
    let route = stream.served().route_id.clone();
    let mut stdout = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        write!(stdout, "{}", chunk?.text())?;
        stdout.flush()?;
    }
    println!("\n-- streamed by {route}");
    Ok(())
}
