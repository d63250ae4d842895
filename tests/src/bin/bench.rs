//! `freerouter-bench`: benchmarks against the real gateway and the project's simulator.
//!
//! `freerouter-bench overhead [--clients N] [--seconds S] [--latency-ms N] [--rate N] [--steady-seconds S] [--rounds N] [--peer litellm] [--peer-bin PATH] [--gateway PATH] [--simulator PATH]`
//! `freerouter-bench burst [--requests N] [--clients N] [--latency-ms N]`
//! `freerouter-bench memory [--requests N] [--body-bytes N] [--latency-ms N] [--gateway PATH]`
//! `freerouter-bench all` runs the three with their defaults.

use freerouter_tests::bench::burst::{self, BurstConfig};
use freerouter_tests::bench::memory::{self, MemoryConfig};
use freerouter_tests::bench::overhead::{self, OverheadConfig};
use freerouter_tests::bench::peer::PeerKind;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "usage: freerouter-bench overhead [--clients N] [--seconds S] [--latency-ms N] [--rate N] [--steady-seconds S]
                                 [--rounds N] [--peer litellm] [--peer-bin PATH] [--postgres ADMIN_URL]
                                 [--gateway PATH] [--simulator PATH]
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

fn seconds(args: &[String], name: &str, default: f64) -> Duration {
    let value = text_arg(args, name)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(value)
}

fn text_arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `flag PATH`, else the first of `names` built beside this binary.
fn binary(args: &[String], flag: &str, names: &[&str], build: &str) -> PathBuf {
    if let Some(path) = text_arg(args, flag) {
        return PathBuf::from(path);
    }
    let here = std::env::current_exe().unwrap_or_default();
    names
        .iter()
        .map(|name| here.with_file_name(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            eprintln!(
                "no {} beside {}: build it (`{build}`) or pass {flag} PATH",
                names[0],
                here.display()
            );
            std::process::exit(2);
        })
}

/// `--gateway PATH`, else the `freerouter-gateway` built beside this binary.
fn gateway_binary(args: &[String]) -> PathBuf {
    binary(
        args,
        "--gateway",
        &["freerouter-gateway", "gateway-under-test"],
        "cargo build --release -p freerouter-gateway",
    )
}

async fn run_overhead(args: &[String]) -> bool {
    let peer = match text_arg(args, "--peer").map(PeerKind::parse).transpose() {
        Ok(peer) => peer,
        Err(problem) => {
            eprintln!("{problem}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let config = OverheadConfig {
        gateway_binary: gateway_binary(args),
        simulator_binary: binary(
            args,
            "--simulator",
            &["freerouter-simulator"],
            "cargo build --release -p freerouter-tests --bin freerouter-simulator",
        ),
        clients: arg(args, "--clients", 16).max(1) as usize,
        measure_for: seconds(args, "--seconds", 5.0),
        upstream_latency_ms: arg(args, "--latency-ms", 50),
        steady_rate: arg(args, "--rate", 100).max(1) as f64,
        steady_for: seconds(args, "--steady-seconds", 10.0),
        rounds: arg(args, "--rounds", 5).max(1) as usize,
        peer,
        peer_binary: text_arg(args, "--peer-bin").map(PathBuf::from),
        postgres: text_arg(args, "--postgres")
            .map(str::to_string)
            .or_else(|| std::env::var("FREEROUTER_BENCH_POSTGRES").ok()),
    };
    println!("overhead: {config:?}");
    let report = overhead::run(config).await;
    println!("{}", report.tables());
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

/// The options each benchmark takes; every one takes a value.
const OPTIONS: &[(&str, &[&str])] = &[
    (
        "overhead",
        &[
            "--clients",
            "--seconds",
            "--latency-ms",
            "--rate",
            "--steady-seconds",
            "--rounds",
            "--peer",
            "--peer-bin",
            "--postgres",
            "--gateway",
            "--simulator",
        ],
    ),
    ("burst", &["--requests", "--clients", "--latency-ms"]),
    (
        "memory",
        &["--requests", "--body-bytes", "--latency-ms", "--gateway"],
    ),
];

/// The first argument after the benchmark's name that is not one of its options, or a value.
fn unknown_option(args: &[String]) -> Option<&str> {
    let known = OPTIONS
        .iter()
        .find(|(name, _)| Some(*name) == args.first().map(String::as_str))
        .map_or(&[][..], |(_, options)| *options);
    let mut rest = args.iter().skip(1);
    while let Some(option) = rest.next() {
        if !known.contains(&option.as_str()) || rest.next().is_none() {
            return Some(option);
        }
    }
    None
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(option) = unknown_option(&args) {
        eprintln!("unknown option or missing value: {option}\n\n{USAGE}");
        std::process::exit(2);
    }
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
