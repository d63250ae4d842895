//! `freerouter-bench`: benchmarks against the real gateway and the project's simulator.
//!
//! `freerouter-bench burst [--requests N] [--clients N] [--latency-ms N]`

use freerouter_tests::bench::burst::{self, BurstConfig};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("burst") => {
            let config = BurstConfig {
                requests: arg(&args, "--requests", 1_000) as usize,
                clients: arg(&args, "--clients", 100) as usize,
                upstream_latency_ms: arg(&args, "--latency-ms", 50),
            };
            println!("burst: {config:?}");
            let report = burst::run(config).await;
            println!("{}", report.table());
            if !report.holds() {
                eprintln!("the burst promise did not hold: {report:?}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: freerouter-bench burst [--requests N] [--clients N] [--latency-ms N]"
            );
            std::process::exit(2);
        }
    }
}
