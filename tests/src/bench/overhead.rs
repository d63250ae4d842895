//! What the gateway costs against calling the upstream directly: added latency, throughput,
//! time to first token, memory, and how that changes from 10 to 1,000 routes in the catalog.
//!
//! The gateway runs as its own process (the real binary, default settings but for a larger
//! concurrency limit), with the quota ledger and the request log on: its one provider has limits
//! far above what the run spends, so every request reserves and settles in SQLite.

use super::load::{self, LoadResult, Target};
use crate::harness::{GatewayConfig, GatewayProcess, ask, ask_stream};
use crate::simulator::Simulator;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct OverheadConfig {
    /// The gateway binary to start (`freerouter-gateway`).
    pub gateway_binary: PathBuf,
    /// Requests per latency measurement.
    pub requests: usize,
    /// Requests per throughput measurement.
    pub throughput_requests: usize,
    /// Upstream latency of the latency measurements.
    pub upstream_latency_ms: u64,
    /// Whether the provider has limits, so every request reserves and settles in the ledger.
    pub ledger: bool,
}

/// One measurement: the same load direct and through the gateway.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub name: String,
    pub direct: LoadResult,
    pub gateway: LoadResult,
}

impl Comparison {
    pub fn added_ms(&self, percentile: f64) -> f64 {
        self.gateway.p(percentile) - self.direct.p(percentile)
    }

    pub fn throughput_ratio(&self) -> f64 {
        self.gateway.throughput() / self.direct.throughput().max(1e-9)
    }
}

#[derive(Clone, Debug, Default)]
pub struct OverheadReport {
    pub latency: Vec<Comparison>,
    pub throughput: Option<Comparison>,
    pub first_token: Option<Comparison>,
    pub idle_rss_kib: u64,
    pub loaded_rss_kib: u64,
    /// Zero-latency throughput and p50 with 10 and with 1,000 routes in the catalog.
    pub routes_10: LoadResult,
    pub routes_1000: LoadResult,
}

impl OverheadReport {
    /// How much slower 1,000 routes are than 10, in percent of throughput.
    pub fn catalog_slowdown_percent(&self) -> f64 {
        (1.0 - self.routes_1000.throughput() / self.routes_10.throughput().max(1e-9)) * 100.0
    }

    /// The targets, each with whether this run met it.
    pub fn targets(&self) -> Vec<(String, bool)> {
        let mut targets = Vec::new();
        for c in &self.latency {
            targets.push((
                format!("{}: added p50 {:.3} ms ≤ 0.3 ms", c.name, c.added_ms(50.0)),
                c.added_ms(50.0) <= 0.3,
            ));
            targets.push((
                format!("{}: added p99 {:.3} ms ≤ 2 ms", c.name, c.added_ms(99.0)),
                c.added_ms(99.0) <= 2.0,
            ));
        }
        if let Some(t) = &self.throughput {
            targets.push((
                format!(
                    "throughput {:.0}% of direct ≥ 50%",
                    t.throughput_ratio() * 100.0
                ),
                t.throughput_ratio() >= 0.5,
            ));
        }
        targets.push((
            format!(
                "idle RSS {:.1} MB ≤ 25 MB",
                self.idle_rss_kib as f64 / 1024.0
            ),
            self.idle_rss_kib <= 25 * 1024,
        ));
        targets.push((
            format!(
                "1,000 routes {:.1}% slower than 10 ≤ 10%",
                self.catalog_slowdown_percent()
            ),
            self.catalog_slowdown_percent() <= 10.0,
        ));
        targets
    }

    pub fn table(&self) -> String {
        let mut out = String::from(
            "| measurement | direct p50 ms | direct p99 ms | gateway p50 ms | gateway p99 ms | added p50 ms | added p99 ms | direct req/s | gateway req/s | errors |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        let rows = self
            .latency
            .iter()
            .chain(&self.first_token)
            .chain(&self.throughput);
        for c in rows {
            out.push_str(&format!(
                "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.0} | {:.0} | {} |\n",
                c.name,
                c.direct.p(50.0),
                c.direct.p(99.0),
                c.gateway.p(50.0),
                c.gateway.p(99.0),
                c.added_ms(50.0),
                c.added_ms(99.0),
                c.direct.throughput(),
                c.gateway.throughput(),
                c.direct.errors + c.gateway.errors,
            ));
        }
        out.push_str(&format!(
            "\n| catalog | gateway req/s (0 ms upstream, 32 clients) | p50 ms | p99 ms |\n|---|---|---|---|\n\
             | 10 routes | {:.0} | {:.2} | {:.2} |\n| 1,000 routes | {:.0} | {:.2} | {:.2} |\n",
            self.routes_10.throughput(),
            self.routes_10.p(50.0),
            self.routes_10.p(99.0),
            self.routes_1000.throughput(),
            self.routes_1000.p(50.0),
            self.routes_1000.p(99.0),
        ));
        out.push_str(&format!(
            "\n| gateway memory | RSS |\n|---|---|\n| idle, after start | {:.1} MB |\n| peak under load | {:.1} MB |\n",
            self.idle_rss_kib as f64 / 1024.0,
            self.loaded_rss_kib as f64 / 1024.0
        ));
        out
    }
}

/// Starts a gateway process with `routes` routes on one limited provider at `sim`: the first is
/// `sim/chat`, the others rank below it and are never needed.
async fn start_gateway(
    config: &OverheadConfig,
    sim: &Simulator,
    routes: usize,
    dir: &std::path::Path,
) -> GatewayProcess {
    let limits = if config.ledger {
        "limits = { rpm = 100000000, rpd = 1000000000, tpm = 1000000000000 }"
    } else {
        ""
    };
    let mut gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.sim]\nbase_url = \"{}\"\napi_keys = [\"sk-bench\"]\n{limits}",
            sim.base_url()
        ))
        .route("sim", "chat", 1)
        .set("limits.max_concurrent_requests", "256")
        .set("limits.max_queue", "1024")
        .set("routing.deadline_ms", "60000")
        .set("routing.header_timeout_ms", "10000")
        .set("routing.first_token_timeout_ms", "10000");
    for n in 1..routes {
        gateway = gateway.route("sim", &format!("spare-{n}"), n as i64 + 1);
    }
    gateway
        .start_process(&config.gateway_binary.display().to_string(), dir)
        .await
}

/// Resident memory of a process, in KiB (0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn target(url: String, body: &serde_json::Value, first_token: bool) -> Target {
    Target {
        url,
        body: serde_json::to_vec(body).unwrap_or_default().into(),
        first_token,
    }
}

/// Runs every measurement; prints progress to stderr as it goes.
pub async fn run(config: OverheadConfig) -> OverheadReport {
    crate::harness::init_tls();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .expect("a client");
    let sim = Simulator::start().await;
    sim.set_recording(false);
    let model = sim.model("chat");
    model.answer("The quick brown fox jumps over the lazy dog.");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let gateway = start_gateway(&config, &sim, 10, dir.path()).await;
    let pid = gateway.pid().expect("the gateway runs");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut report = OverheadReport {
        idle_rss_kib: rss_kib(pid),
        ..OverheadReport::default()
    };

    let direct_url = format!("{}/chat/completions", sim.base_url());
    let gateway_url = gateway.url("/v1/chat/completions");
    let plain = (
        target(
            direct_url.clone(),
            &ask("chat", "Say something short."),
            false,
        ),
        target(
            gateway_url.clone(),
            &ask("auto", "Say something short."),
            false,
        ),
    );
    let streamed = (
        target(
            direct_url.clone(),
            &ask_stream("chat", "Say something short."),
            true,
        ),
        target(
            gateway_url.clone(),
            &ask_stream("auto", "Say something short."),
            true,
        ),
    );

    model.latency_ms(0);
    eprintln!("warming up");
    load::run(&http, &plain.0, 16, 500).await;
    load::run(&http, &plain.1, 16, 500).await;

    model.latency_ms(config.upstream_latency_ms);
    for concurrency in [16, 64] {
        eprintln!("latency at {concurrency} clients");
        let requests = config.requests.max(concurrency * 4);
        report.latency.push(Comparison {
            name: format!(
                "chat, {} ms upstream, {concurrency} clients",
                config.upstream_latency_ms
            ),
            direct: load::run(&http, &plain.0, concurrency, requests).await,
            gateway: load::run(&http, &plain.1, concurrency, requests).await,
        });
    }
    eprintln!("time to first token");
    report.first_token = Some(Comparison {
        name: format!(
            "stream, time to first token, {} ms upstream, 16 clients",
            config.upstream_latency_ms
        ),
        direct: load::run(&http, &streamed.0, 16, config.requests).await,
        gateway: load::run(&http, &streamed.1, 16, config.requests).await,
    });

    model.latency_ms(0);
    eprintln!("throughput at 0 ms upstream");
    let direct = load::run(&http, &plain.0, 32, config.throughput_requests).await;
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let through_gateway = load::run(&http, &plain.1, 32, config.throughput_requests).await;
    sampler.abort();
    report.loaded_rss_kib = peak.load(std::sync::atomic::Ordering::Relaxed);
    report.throughput = Some(Comparison {
        name: "chat, 0 ms upstream, 32 clients (throughput)".into(),
        direct,
        gateway: through_gateway,
    });
    report.routes_10 = load::run(&http, &plain.1, 32, config.throughput_requests).await;
    let _ = gateway.terminate().await;

    eprintln!("1,000 routes");
    let big_dir = tempfile::tempdir().expect("a temporary folder");
    let big = start_gateway(&config, &sim, 1_000, big_dir.path()).await;
    let big_target = target(
        big.url("/v1/chat/completions"),
        &ask("auto", "Say something short."),
        false,
    );
    load::run(&http, &big_target, 16, 500).await;
    report.routes_1000 = load::run(&http, &big_target, 32, config.throughput_requests).await;
    let _ = big.terminate().await;
    report
}
