//! Quota leases across gateway processes (the real binaries) on one SQLite file: together they
//! never exceed a key's RPM, RPD or TPM — the simulator enforces the real limits and counts any
//! request it has to refuse — and together they serve at least 95 % of what the limits allow
//! (leases must not strand capacity). Each test makes one limit the binding one, with the others
//! set and enforced too.

use freerouter_tests::harness::{GatewayConfig, GatewayProcess, clear_of_utc_midnight};
use freerouter_tests::simulator::{KeyLimits, Simulator};
use serde_json::{Value, json};
use std::time::Duration;

/// The gateway's real `main.rs`, built by this package as `gateway-under-test`.
const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");

fn limits_toml(limits: KeyLimits) -> String {
    let field = |name: &str, value: Option<u64>| value.map(|v| format!("{name} = {v}"));
    let fields: Vec<String> = [
        field("rpm", limits.rpm),
        field("rpd", limits.rpd),
        field("tpm", limits.tpm),
        field("tpd", limits.tpd),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("{{ {} }}", fields.join(", "))
}

/// `processes` gateways on one file in front of one key with `limits` (the simulator's and the
/// gateway's alike).
async fn gateways(
    sim: &Simulator,
    limits: KeyLimits,
    processes: usize,
    dir: &tempfile::TempDir,
) -> Vec<GatewayProcess> {
    gateways_on(sim, limits, processes, dir, None).await
}

/// The same on `database` (a `postgres://` URL) instead of a file in `dir`.
pub(crate) async fn gateways_on(
    sim: &Simulator,
    limits: KeyLimits,
    processes: usize,
    dir: &tempfile::TempDir,
    database: Option<&str>,
) -> Vec<GatewayProcess> {
    sim.model("m").answer("ok");
    sim.limit_key("sk-shared", limits);
    let config = GatewayConfig::new()
        .set("limits.max_concurrent_requests", "64")
        .toml(&format!(
            "[providers.p]\nbase_url = \"{}\"\napi_keys = [\"sk-shared\"]\nlimits = {}",
            sim.base_url(),
            limits_toml(limits)
        ))
        .route("p", "m", 1);
    let config = match database {
        Some(url) => config.on_database(url),
        None => config,
    };
    let mut started = Vec::new();
    for _ in 0..processes {
        started.push(config.start_process(GATEWAY, dir.path()).await);
    }
    started
}

/// How one client's asking ended.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) status: u16,
    pub(crate) code: String,
    /// These two are read only through `Debug`, in a failure's message: a key skipped for a
    /// moment (`Retry-After: 1`) reads differently there from a spent window.
    #[allow(dead_code)]
    retry_after: Option<String>,
    #[allow(dead_code)]
    message: String,
}

impl Refused {
    pub(crate) fn is_quota_exhausted(&self) -> bool {
        self.status == 429 && self.code == "quota_exhausted"
    }
}

/// `clients` clients per gateway, each asking until it is refused; what was served, and how each
/// client's asking ended.
pub(crate) async fn spend(
    gateways: &[GatewayProcess],
    clients: usize,
    prompt: &str,
) -> (usize, Vec<Refused>) {
    freerouter_tests::harness::init_tls();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let body = json!({"model": "auto", "max_tokens": 1,
        "messages": [{"role": "user", "content": prompt}]});
    let mut tasks = Vec::new();
    for gateway in gateways {
        for _ in 0..clients {
            let (http, url, body) = (
                http.clone(),
                gateway.url("/v1/chat/completions"),
                body.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut served = 0;
                loop {
                    let response = http.post(&url).json(&body).send().await.unwrap();
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let answer: Value = response.json().await.unwrap_or_default();
                    if status == 200 {
                        served += 1;
                        continue;
                    }
                    let text =
                        |field: &str| answer["error"][field].as_str().unwrap_or("").to_string();
                    let refused = Refused {
                        status,
                        code: text("code"),
                        retry_after,
                        message: text("message"),
                    };
                    return (served, refused);
                }
            }));
        }
    }
    let (mut served, mut refusals) = (0, Vec::new());
    for task in tasks {
        let (n, refusal) = task.await.unwrap();
        served += n;
        refusals.push(refusal);
    }
    (served, refusals)
}

/// A burst refused only as `quota_exhausted`, never by the provider, that served at most the key's
/// 60 RPM and at least 95 % of it.
pub(crate) fn assert_spent_a_60_rpm_key_together(
    sim: &Simulator,
    served: usize,
    refusals: &[Refused],
) {
    assert!(
        refusals.iter().all(Refused::is_quota_exhausted),
        "{refusals:?}"
    );
    assert_eq!(sim.limit_refusals(), 0, "the provider never had to refuse");
    assert_eq!(sim.calls("m"), served);
    assert!(served <= 60, "within the key's 60 RPM: {served}");
    assert!(
        served >= 57,
        "at least 95 % of the 60 RPM: {served}; the refusals: {refusals:#?}"
    );
}

pub(crate) async fn stop(gateways: Vec<GatewayProcess>) {
    for gateway in gateways {
        gateway.kill().await;
    }
}

#[tokio::test]
async fn two_gateway_processes_spend_a_keys_rpm_together_without_exceeding_it() {
    clear_of_utc_midnight().await;
    let sim = Simulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let limits = KeyLimits {
        rpm: Some(60),
        rpd: Some(1_000),
        tpm: Some(100_000),
        tpd: None,
    };
    let processes = gateways(&sim, limits, 2, &dir).await;
    let (served, refusals) = spend(&processes, 15, "shared key").await;
    assert_spent_a_60_rpm_key_together(&sim, served, &refusals);
    stop(processes).await;
}

#[tokio::test]
async fn three_gateway_processes_spend_a_keys_rpd_together_without_exceeding_it() {
    clear_of_utc_midnight().await;
    let sim = Simulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let limits = KeyLimits {
        rpm: Some(1_000),
        rpd: Some(90),
        tpm: Some(100_000),
        tpd: None,
    };
    let processes = gateways(&sim, limits, 3, &dir).await;
    let (served, refusals) = spend(&processes, 10, "shared key").await;
    assert!(
        refusals.iter().all(Refused::is_quota_exhausted),
        "{refusals:?}"
    );
    assert_eq!(sim.limit_refusals(), 0, "the provider never had to refuse");
    assert_eq!(sim.calls("m"), served);
    assert!(served <= 90, "within the key's 90 RPD: {served}");
    assert!(
        served >= 86,
        "at least 95 % of the 90 RPD: {served}; the refusals: {refusals:#?}"
    );
    stop(processes).await;
}

#[tokio::test]
async fn three_gateway_processes_spend_a_keys_tpm_together_without_exceeding_it() {
    clear_of_utc_midnight().await;
    let sim = Simulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    // 400 characters: 100 prompt tokens as the simulator counts, and one of answer ("ok"). The
    // gateway estimates 105 a request and settles the 101 the answer reports.
    let prompt = "word ".repeat(80);
    let limits = KeyLimits {
        rpm: Some(1_000),
        rpd: Some(5_000),
        tpm: Some(10_100),
        tpd: None,
    };
    let processes = gateways(&sim, limits, 3, &dir).await;
    let (served, refusals) = spend(&processes, 10, &prompt).await;
    // Once what is left is smaller than one request, the key is skipped for it (not benched).
    assert!(
        refusals
            .iter()
            .all(|refused| refused.status == 429 || refused.status == 502),
        "{refusals:?}"
    );
    assert_eq!(sim.limit_refusals(), 0, "the provider never had to refuse");
    assert_eq!(sim.calls("m"), served);
    assert!(served <= 100, "within the key's 10,100 TPM: {served}");
    assert!(
        served >= 95,
        "at least 95 % of the 100 requests the TPM allows: {served}; the refusals: {refusals:#?}"
    );
    stop(processes).await;
}
