//! Memory under a flood of huge bodies: many concurrent requests of almost the body limit each,
//! padded with `[0,0,…]` (the cheapest JSON to send and, parsed into a tree, the most expensive to
//! hold), behind a slow upstream, at the default 20 slots and 200 queue places. Reports the gateway's
//! peak resident memory, what every request got, and whether `/health` answered throughout.

use super::procfs::{peak_rss_kib, rss_kib};
use crate::harness::{GatewayConfig, ask};
use crate::simulator::Simulator;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct MemoryConfig {
    pub gateway_binary: PathBuf,
    /// Concurrent requests.
    pub requests: usize,
    /// Size of each body.
    pub body_bytes: usize,
    /// Upstream latency: how long each admitted request holds its slot.
    pub upstream_latency_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct MemoryReport {
    pub idle_rss_kib: u64,
    /// The process's high-water mark (`VmHWM`).
    pub peak_rss_kib: u64,
    pub statuses: BTreeMap<u16, usize>,
    /// Requests that got no HTTP answer at all.
    pub unanswered: usize,
    pub health_checks: usize,
    pub health_failures: usize,
    pub health_slowest: Duration,
    pub elapsed: Duration,
}

impl MemoryReport {
    /// Peak RSS ≤ 1 GiB, every request answered with 200, 413 or 429, `/health` always up.
    pub fn holds(&self) -> bool {
        self.peak_rss_kib <= 1024 * 1024
            && self.unanswered == 0
            && self.statuses.keys().all(|s| [200, 413, 429].contains(s))
            && self.health_failures == 0
    }

    pub fn table(&self) -> String {
        let statuses = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "| gateway memory under huge bodies | value |\n|---|---|\n\
             | idle RSS | {:.1} MB |\n| peak RSS (VmHWM) | {:.1} MB |\n\
             | answers | {statuses} ({} unanswered) |\n\
             | /health during the run | {} checks, {} failed, slowest {:.1} ms |\n\
             | run time | {:.1} s |\n",
            self.idle_rss_kib as f64 / 1024.0,
            self.peak_rss_kib as f64 / 1024.0,
            self.unanswered,
            self.health_checks,
            self.health_failures,
            self.health_slowest.as_secs_f64() * 1000.0,
            self.elapsed.as_secs_f64(),
        )
    }
}

/// A chat body of about `bytes` bytes: one short message and a `pad` of zeros.
fn padded_body(bytes: usize) -> bytes::Bytes {
    let mut body = serde_json::to_string(&ask("auto", "hi")).unwrap_or_default();
    body.pop();
    body.push_str(",\"pad\":[0");
    while body.len() + 3 < bytes {
        body.push_str(",0");
    }
    body.push_str("]}");
    bytes::Bytes::from(body)
}

pub async fn run(config: MemoryConfig) -> MemoryReport {
    let sim = Simulator::start().await;
    sim.set_recording(false);
    sim.model("chat").latency_ms(config.upstream_latency_ms);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.sim]\nbase_url = \"{}\"\napi_keys = [\"sk-bench\"]",
            sim.base_url()
        ))
        .route("sim", "chat", 1)
        // The defaults a user runs with: 20 slots, 200 queue places, a 4 MiB body limit.
        .set("limits.max_concurrent_requests", "20")
        .set("limits.max_queue", "200")
        .set("limits.queue_timeout_s", "30")
        .set("routing.header_timeout_ms", "30000")
        .set("routing.deadline_ms", "120000")
        .start_process(&config.gateway_binary.display().to_string(), dir.path())
        .await;
    let pid = gateway.pid().unwrap_or(0);
    let mut report = MemoryReport {
        idle_rss_kib: rss_kib(pid),
        ..MemoryReport::default()
    };
    crate::harness::init_tls();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default();
    let body = padded_body(config.body_bytes);
    let started = Instant::now();
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let health = tokio::spawn({
        let (http, url, running) = (http.clone(), gateway.url("/health"), running.clone());
        async move {
            let (mut checks, mut failures, mut slowest) = (0, 0, Duration::ZERO);
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                let asked = Instant::now();
                let ok = tokio::time::timeout(Duration::from_secs(2), http.get(&url).send())
                    .await
                    .is_ok_and(|r| r.is_ok_and(|r| r.status() == 200));
                checks += 1;
                failures += usize::from(!ok);
                slowest = slowest.max(asked.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (checks, failures, slowest)
        }
    });
    let mut requests = Vec::with_capacity(config.requests);
    for _ in 0..config.requests {
        let (http, url, body) = (
            http.clone(),
            gateway.url("/v1/chat/completions"),
            body.clone(),
        );
        requests.push(tokio::spawn(async move {
            http.post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for request in requests {
        match request.await {
            Ok(Ok(status)) => *report.statuses.entry(status).or_insert(0) += 1,
            _ => report.unanswered += 1,
        }
    }
    report.elapsed = started.elapsed();
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    if let Ok((checks, failures, slowest)) = health.await {
        report.health_checks = checks;
        report.health_failures = failures;
        report.health_slowest = slowest;
    }
    report.peak_rss_kib = peak_rss_kib(pid);
    gateway.kill().await;
    report
}
