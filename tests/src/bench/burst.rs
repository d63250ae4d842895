//! The burst scenario: six simulated providers with free-tier-like limits (the same limits in the
//! gateway's config), many concurrent clients. Zero upstream 429s; every request served or refused
//! with 429 `quota_exhausted` and a correct `Retry-After`; served equals the providers' capacity.

use super::{percentile_ms, wait_for_minute_room};
use crate::harness::{GatewayConfig, ask};
use crate::simulator::{KeyLimits, Simulator};
use std::time::{Duration, Instant};

/// One simulated provider of the scenario.
#[derive(Clone, Copy, Debug)]
pub struct ProviderSpec {
    pub name: &'static str,
    pub rpm: u64,
    pub rpd: Option<u64>,
    pub tpm: Option<u64>,
}

/// Free-tier-like limits: a Groq-like key, a Gemini-like one, an OpenRouter-like account, …
pub const PROVIDERS: [ProviderSpec; 6] = [
    ProviderSpec {
        name: "groqish",
        rpm: 30,
        rpd: Some(1_000),
        tpm: Some(6_000),
    },
    ProviderSpec {
        name: "geminish",
        rpm: 10,
        rpd: Some(250),
        tpm: None,
    },
    ProviderSpec {
        name: "routerish",
        rpm: 20,
        rpd: Some(50),
        tpm: None,
    },
    ProviderSpec {
        name: "cerebrish",
        rpm: 30,
        rpd: None,
        tpm: Some(60_000),
    },
    ProviderSpec {
        name: "mistralish",
        rpm: 15,
        rpd: Some(1_000),
        tpm: None,
    },
    ProviderSpec {
        name: "sambish",
        rpm: 5,
        rpd: Some(20),
        tpm: None,
    },
];

#[derive(Clone, Copy, Debug)]
pub struct BurstConfig {
    pub requests: usize,
    pub clients: usize,
    /// Upstream latency of every simulated provider.
    pub upstream_latency_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct BurstReport {
    pub requests: usize,
    pub served: usize,
    pub refused_quota: usize,
    /// Refusals whose `Retry-After` is missing or outside what the windows allow.
    pub bad_retry_after: usize,
    /// A few of them: (Retry-After given, seconds expected).
    pub bad_retry_after_samples: Vec<(Option<u64>, f64)>,
    /// Any other status (should be none).
    pub other: Vec<u16>,
    /// 429s the simulated providers sent.
    pub upstream_429s: usize,
    /// What the providers could serve in one minute (the run stays within one).
    pub capacity: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub served_p50_ms: f64,
    pub served_p99_ms: f64,
    pub elapsed: Duration,
}

impl BurstReport {
    /// Whether the run met the promise: no upstream 429s, nothing but served or quota refusals,
    /// correct Retry-After, and every bit of capacity used.
    pub fn holds(&self) -> bool {
        self.upstream_429s == 0
            && self.other.is_empty()
            && self.bad_retry_after == 0
            && self.served == self.capacity.min(self.requests)
            && self.served + self.refused_quota == self.requests
    }

    pub fn table(&self) -> String {
        format!(
            "| requests | served | refused (quota_exhausted) | other | upstream 429s | capacity | p50 ms | p99 ms | served p50 ms | served p99 ms | wall s |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            self.requests,
            self.served,
            self.refused_quota,
            self.other.len(),
            self.upstream_429s,
            self.capacity,
            self.p50_ms,
            self.p99_ms,
            self.served_p50_ms,
            self.served_p99_ms,
            self.elapsed.as_secs_f64()
        )
    }
}

struct Outcome {
    status: u16,
    code: String,
    retry_after: Option<u64>,
    latency: Duration,
    /// When the answer came, from the start of the run.
    at: Duration,
}

/// Runs the scenario on a fresh gateway and simulators.
pub async fn run(config: BurstConfig) -> BurstReport {
    crate::harness::init_tls();
    let mut sims = Vec::new();
    let mut gateway_config = GatewayConfig::new()
        .set("limits.max_concurrent_requests", "64")
        .set("limits.max_queue", "1000")
        .set("log.level", "error");
    for (rank, spec) in PROVIDERS.iter().enumerate() {
        let sim = Simulator::start().await;
        sim.set_recording(false);
        sim.model("chat").latency_ms(config.upstream_latency_ms);
        let key = format!("sk-{}", spec.name);
        sim.limit_key(
            &key,
            KeyLimits {
                rpm: Some(spec.rpm),
                rpd: spec.rpd,
                tpm: spec.tpm,
                tpd: None,
            },
        );
        let mut limits = format!("rpm = {}", spec.rpm);
        if let Some(rpd) = spec.rpd {
            limits.push_str(&format!(", rpd = {rpd}"));
        }
        if let Some(tpm) = spec.tpm {
            limits.push_str(&format!(", tpm = {tpm}"));
        }
        gateway_config = gateway_config
            .toml(&format!(
                "[providers.{}]\nbase_url = \"{}\"\napi_keys = [\"{key}\"]\nlimits = {{ {limits} }}\nday_reset = \"00:00 UTC\"",
                spec.name,
                sim.base_url()
            ))
            .route(spec.name, "chat", rank as i64 + 1);
        sims.push(sim);
    }
    let gateway = gateway_config.start().await;
    let capacity: usize = PROVIDERS
        .iter()
        .map(|p| p.rpm.min(p.rpd.unwrap_or(u64::MAX)) as usize)
        .sum();

    wait_for_minute_room(15).await;
    let per_client = config.requests.div_ceil(config.clients);
    let mut tasks = Vec::new();
    let started = Instant::now();
    for client in 0..config.clients {
        let http = gateway.http.clone();
        let run_start = started;
        let url = gateway.url("/v1/chat/completions");
        let count = per_client.min(config.requests.saturating_sub(client * per_client));
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::with_capacity(count);
            for i in 0..count {
                let sent = Instant::now();
                let body = ask(
                    "auto",
                    &format!("client {client} request {i}: say something short"),
                );
                let Ok(response) = http.post(&url).json(&body).send().await else {
                    outcomes.push(Outcome {
                        status: 0,
                        code: "transport".into(),
                        retry_after: None,
                        latency: sent.elapsed(),
                        at: run_start.elapsed(),
                    });
                    continue;
                };
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let text = response.text().await.unwrap_or_default();
                let code = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/error/code")
                            .and_then(|c| c.as_str())
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                outcomes.push(Outcome {
                    status,
                    code,
                    retry_after,
                    latency: sent.elapsed(),
                    at: run_start.elapsed(),
                });
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();

    let mut report = BurstReport {
        requests: outcomes.len(),
        capacity,
        elapsed,
        upstream_429s: sims.iter().map(Simulator::limit_refusals).sum(),
        ..BurstReport::default()
    };
    for outcome in &outcomes {
        match (outcome.status, outcome.code.as_str()) {
            (200, _) => report.served += 1,
            (429, "quota_exhausted") => {
                report.refused_quota += 1;
                // Every key's first request went out at the start of the run, so the soonest room
                // is a minute after it: the right Retry-After is about 60 s less the time since.
                let expected = 60.0 - outcome.at.as_secs_f64();
                let ok = outcome
                    .retry_after
                    .is_some_and(|s| s >= 1 && (s as f64 - expected).abs() <= 2.5);
                if !ok {
                    report.bad_retry_after += 1;
                    if report.bad_retry_after_samples.len() < 5 {
                        report
                            .bad_retry_after_samples
                            .push((outcome.retry_after, expected));
                    }
                }
            }
            (status, _) => report.other.push(status),
        }
    }
    let mut all: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    all.sort();
    let mut served: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == 200)
        .map(|o| o.latency)
        .collect();
    served.sort();
    report.p50_ms = percentile_ms(&all, 50.0);
    report.p99_ms = percentile_ms(&all, 99.0);
    report.served_p50_ms = percentile_ms(&served, 50.0);
    report.served_p99_ms = percentile_ms(&served, 99.0);
    let _ = gateway.stop().await;
    report
}
