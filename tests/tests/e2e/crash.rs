//! Crash safety: a gateway process killed (SIGKILL) under load, again and again, beside a survivor
//! sharing its file and its key. Every time the SQLite file passes `PRAGMA integrity_check` and the
//! gateway restarts and serves; the quota ledger always counts at least every request that reached
//! the provider (so the survivor can never overspend the key: the simulator enforces its limit and
//! counts any request it has to refuse), and the killed process's leases stop counting what it
//! never handed out within their TTL — what it strands is the committed margin of its leases and
//! the requests cut in flight, never a whole lease.

use freerouter::quota::commit_step;
use freerouter::time::{EpochMs, now_ms};
use freerouter_tests::harness::{GatewayConfig, ask};
use freerouter_tests::simulator::{KeyLimits, Simulator};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The gateway's real `main.rs`, built by this package as `gateway-under-test`.
const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");

const KILLS: usize = 20;
const CLIENTS: usize = 4;
const SURVIVOR_CLIENTS: usize = 2;
/// The limited key's requests for the whole run: spent part-way through.
const KEY_LIMIT: u64 = 1_500;
const LEASE_TTL_MS: EpochMs = 1_000;
const MAX_LEASE: u64 = 64;

/// What the ledger counts for the limited key, read straight from the file after a kill.
#[derive(Debug)]
struct Counted {
    /// As the ledger counts it at `at`: live leases whole, expired unsettled ones at their mark,
    /// settled ones at their use.
    requests: i64,
    /// Unsettled leases still live at `at`.
    live: i64,
}

/// Opens the file as a crashed gateway left it: integrity first, then the ledger.
async fn inspect(db: &Path, at: EpochMs) -> Counted {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("the database opens after a kill");
    let (integrity,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity_check runs");
    assert_eq!(integrity, "ok");
    let (requests, live): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN settled = 0 AND expires_ms <= ?1 THEN committed_requests
                                  ELSE requests END), 0),
                COALESCE(SUM(settled = 0 AND expires_ms > ?1), 0)
           FROM quota_ledger WHERE provider = 'p'",
    )
    .bind(at)
    .fetch_one(&mut conn)
    .await
    .expect("the ledger reads");
    conn.close().await.expect("close");
    Counted { requests, live }
}

/// Clients asking `url` until `stop`; what they were served.
fn load(
    http: &reqwest::Client,
    url: String,
    clients: usize,
    stop: &Arc<AtomicBool>,
    served: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            let (served, stop) = (served.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let asked = http.post(&url).json(&ask("auto", &format!("load {i}")));
                    // A kill cuts requests in flight: the client stops there.
                    let Ok(response) = asked.send().await else {
                        return;
                    };
                    let status = response.status();
                    assert!(status.is_success(), "under load: {status} (not a crash)");
                    if response.bytes().await.is_err() {
                        return;
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

#[tokio::test]
async fn a_gateway_killed_under_load_twenty_times_never_lets_the_survivor_overspend_and_its_leases_return()
 {
    let started = Instant::now();
    let sim = Simulator::start().await;
    // Slow enough that requests are in flight when the kill lands.
    sim.model("m").latency_ms(20);
    sim.model("fallback").latency_ms(20);
    sim.set_recording(false);
    sim.limit_key(
        "sk-crash",
        KeyLimits {
            rpd: Some(KEY_LIMIT),
            ..KeyLimits::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    // The limited key first; once it is spent the requests go on to an unlimited fallback.
    let config = GatewayConfig::new()
        .set("storage.log_flush_ms", "20")
        .set("quota.lease_ttl_ms", &LEASE_TTL_MS.to_string())
        .set("quota.max_lease_requests", &MAX_LEASE.to_string())
        .toml(&format!(
            "[providers.p]\nbase_url = \"{url}\"\napi_keys = [\"sk-crash\"]\nlimits = {{ rpd = {KEY_LIMIT} }}\n\n\
             [providers.q]\nbase_url = \"{url}\"\napi_keys = [\"sk-fallback\"]",
            url = sim.base_url()
        ))
        .route("p", "m", 1)
        .route("q", "fallback", 2);
    freerouter_tests::harness::init_tls();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let db = dir.path().join("freerouter.db");

    let survivor = config.start_process(GATEWAY, dir.path()).await;
    let survivor_served = Arc::new(AtomicUsize::new(0));

    // What a kill may strand beyond the TTL: the committed margin of the slot's live leases (the
    // current one and the one asked for ahead), and the requests handed out but cut before they
    // reached the provider.
    let per_kill = 2 * 3 * commit_step(MAX_LEASE) as i64 + CLIENTS as i64;
    let mut stranded_before = 0;
    for round in 0..KILLS {
        let gateway = config.start_process(GATEWAY, dir.path()).await;
        let url = gateway.url("/v1/chat/completions");
        let first = http.post(&url).json(&ask("auto", "up?")).send().await;
        assert_eq!(
            first.expect("a restarted gateway answers").status(),
            200,
            "round {round}: the restarted gateway serves"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let mut clients = load(&http, url, CLIENTS, &stop, &served);
        clients.extend(load(
            &http,
            survivor.url("/v1/chat/completions"),
            SURVIVOR_CLIENTS,
            &stop,
            &survivor_served,
        ));
        // A different moment of the load each round.
        tokio::time::sleep(Duration::from_millis(150 + 13 * round as u64)).await;
        gateway.kill().await;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await.expect("a client task");
        }

        // At once: everything that reached the provider on the limited key is counted.
        let reached = sim.calls("m") as i64;
        let now = inspect(&db, now_ms()).await;
        assert!(
            now.requests >= reached,
            "round {round}: the ledger counts every request sent: {now:?}, {reached} sent"
        );
        // One TTL later no lease is live: the survivor settled its own with their exact use, the
        // dead process's count only their committed marks.
        tokio::time::sleep(Duration::from_millis(LEASE_TTL_MS as u64 + 500)).await;
        let reached = sim.calls("m") as i64;
        let later = inspect(&db, now_ms()).await;
        assert_eq!(later.live, 0, "round {round}: every lease ended: {later:?}");
        assert!(
            later.requests >= reached,
            "round {round}: still every request sent: {later:?}, {reached} sent"
        );
        let stranded = later.requests - reached;
        assert!(
            stranded - stranded_before <= per_kill,
            "round {round}: the kill stranded {} requests, more than its leases' margins \
             ({per_kill}): {later:?}, {reached} sent",
            stranded - stranded_before
        );
        stranded_before = stranded;
        assert_eq!(
            sim.limit_refusals(),
            0,
            "round {round}: the provider never had to refuse"
        );
        eprintln!(
            "round {round}: {reached} sent on the limited key, ledger {later:?}, {stranded} stranded, {:?}",
            started.elapsed()
        );
    }
    // The survivor spends what is left: the key ends at its limit, less what the kills stranded.
    for _ in 0..KEY_LIMIT {
        let response = http
            .post(survivor.url("/v1/chat/completions"))
            .json(&ask("auto", "what is left?"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200);
        if freerouter_tests::harness::header(&response, "x-gateway-route") != "p/m" {
            break;
        }
    }
    assert_eq!(sim.limit_refusals(), 0, "the provider never had to refuse");
    let sent = sim.calls("m") as i64;
    assert!(
        sent + stranded_before >= KEY_LIMIT as i64,
        "the key was spent to its limit but what the kills stranded: {sent} sent, {stranded_before} stranded"
    );
    eprintln!(
        "{KILLS} kills under load in {:?}: {sent} of {KEY_LIMIT} sent on the limited key, \
         {stranded_before} stranded, the survivor served {}",
        started.elapsed(),
        survivor_served.load(Ordering::SeqCst)
    );
    survivor.terminate().await;
}
