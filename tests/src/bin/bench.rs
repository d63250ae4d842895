//! `freerouter-bench`: benchmarks against the real gateway and the project's simulator.
//!
//! `freerouter-bench overhead [--requests N] [--throughput-requests N] [--latency-ms N] [--gateway PATH] [--without-ledger]`
//! `freerouter-bench burst [--requests N] [--clients N] [--latency-ms N]`
//! `freerouter-bench memory [--requests N] [--body-bytes N] [--latency-ms N] [--gateway PATH]`
//! `freerouter-bench all` runs both with their defaults.

use freerouter_tests::bench::burst::{self, BurstConfig};
use freerouter_tests::bench::memory::{self, MemoryConfig};
use freerouter_tests::bench::overhead::{self, OverheadConfig};
use std::path::PathBuf;

const USAGE: &str = "usage: freerouter-bench overhead [--requests N] [--throughput-requests N] [--latency-ms N] [--gateway PATH] [--without-ledger]
       freerouter-bench burst [--requests N] [--clients N] [--latency-ms N]
       freerouter-bench memory [--requests N] [--body-bytes N] [--latency-ms N] [--gateway PATH]
       freerouter-bench all";

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `--gateway PATH`, else the `freerouter-gateway` built beside this binary.
fn gateway_binary(args: &[String]) -> PathBuf {
    if let Some(path) = args
        .iter()
        .position(|a| a == "--gateway")
        .and_then(|i| args.get(i + 1))
    {
        return PathBuf::from(path);
    }
    let here = std::env::current_exe().unwrap_or_default();
    ["freerouter-gateway", "gateway-under-test"]
        .iter()
        .map(|name| here.with_file_name(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            eprintln!(
                "no gateway binary beside {}: build it (`cargo build --release -p freerouter-gateway`) or pass --gateway PATH",
                here.display()
            );
            std::process::exit(2);
        })
}

async fn run_overhead(args: &[String]) -> bool {
    let config = OverheadConfig {
        gateway_binary: gateway_binary(args),
        requests: arg(args, "--requests", 3_000) as usize,
        throughput_requests: arg(args, "--throughput-requests", 20_000) as usize,
        upstream_latency_ms: arg(args, "--latency-ms", 50),
        ledger: !args.iter().any(|a| a == "--without-ledger"),
    };
    println!("overhead: {config:?}");
    let report = overhead::run(config).await;
    println!("{}", report.table());
    let mut all_met = true;
    for (target, met) in report.targets() {
        println!("{} {target}", if met { "met " } else { "MISS" });
        all_met &= met;
    }
    all_met
}

async fn run_burst(args: &[String]) -> bool {
    let config = BurstConfig {
        requests: arg(args, "--requests", 1_000) as usize,
        clients: arg(args, "--clients", 100) as usize,
        upstream_latency_ms: arg(args, "--latency-ms", 50),
    };
    println!("burst: {config:?}");
    let report = burst::run(config).await;
    println!("{}", report.table());
    if !report.holds() {
        eprintln!("the burst promise did not hold: {report:?}");
    }
    report.holds()
}

async fn run_memory(args: &[String]) -> bool {
    let config = MemoryConfig {
        gateway_binary: gateway_binary(args),
        requests: arg(args, "--requests", 250) as usize,
        body_bytes: arg(args, "--body-bytes", 3_900_000) as usize,
        upstream_latency_ms: arg(args, "--latency-ms", 3_000),
    };
    println!("memory: {config:?}");
    let report = memory::run(config).await;
    println!("{}", report.table());
    if !report.holds() {
        eprintln!("the memory promise did not hold: {report:?}");
    }
    report.holds()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let held = match args.first().map(String::as_str) {
        Some("overhead") => run_overhead(&args).await,
        Some("burst") => run_burst(&args).await,
        Some("memory") => run_memory(&args).await,
        Some("all") => {
            let overhead = run_overhead(&[]).await;
            let burst = run_burst(&[]).await;
            let memory = run_memory(&[]).await;
            overhead && burst && memory
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if !held {
        std::process::exit(1);
    }
}
