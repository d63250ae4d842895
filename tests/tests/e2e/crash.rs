//! Crash safety: the gateway process killed (SIGKILL) under load, again and again. Every time the
//! SQLite file passes `PRAGMA integrity_check`, the gateway restarts and serves, and the quota ledger
//! keeps every request it granted; only reservations in flight at the kill stay unsettled, and they
//! expire.

use freerouter::quota::RESERVATION_TTL_MS;
use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, ask};
use freerouter_tests::simulator::Simulator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The gateway's real `main.rs`, built by this package as `gateway-under-test`.
const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");

const KILLS: usize = 20;
const CLIENTS: usize = 6;

/// What the ledger holds, read straight from the file after a kill.
#[derive(Debug)]
struct Ledger {
    rows: i64,
    settled: i64,
    /// Unsettled rows that still count at `now`.
    live_unsettled: i64,
    /// Unsettled rows that would still count once a reservation's lifetime has passed.
    unsettled_after_ttl: i64,
}

/// Opens the file as a crashed gateway left it: integrity first, then the ledger.
async fn inspect(db: &Path) -> Ledger {
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
    let now = now_ms();
    let (rows, settled, live_unsettled, unsettled_after_ttl): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT COUNT(*),
                    COALESCE(SUM(settled), 0),
                    COALESCE(SUM(CASE WHEN settled = 0 AND expires_ms > ?1 THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN settled = 0 AND expires_ms > ?2 THEN 1 ELSE 0 END), 0)
             FROM quota_ledger",
        )
        .bind(now)
        .bind(now + RESERVATION_TTL_MS + 1)
        .fetch_one(&mut conn)
        .await
        .expect("the ledger reads");
    conn.close().await.expect("close");
    Ledger {
        rows,
        settled,
        live_unsettled,
        unsettled_after_ttl,
    }
}

#[tokio::test]
async fn a_gateway_killed_under_load_twenty_times_keeps_its_database_and_quota_intact() {
    let started = Instant::now();
    let sim = Simulator::start().await;
    // Slow enough that requests are in flight when the kill lands.
    sim.model("m").latency_ms(20);
    sim.set_recording(false);
    let dir = tempfile::tempdir().unwrap();
    let config = GatewayConfig::new()
        .set("storage.log_flush_ms", "20")
        .toml(&format!(
            "[providers.p]\nbase_url = \"{}\"\napi_keys = [\"sk-crash\"]\nlimits = {{ rpd = 1000000 }}",
            sim.base_url()
        ))
        .route("p", "m", 1);
    freerouter_tests::harness::init_tls();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut served_total = 0usize;
    for round in 0..KILLS {
        let gateway = config.start_process(GATEWAY, dir.path()).await;
        let url = gateway.url("/v1/chat/completions");
        let first = http.post(&url).json(&ask("auto", "up?")).send().await;
        assert_eq!(
            first.expect("a restarted gateway answers").status(),
            200,
            "round {round}: the restarted gateway serves"
        );
        served_total += 1;

        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (http, url) = (http.clone(), url.clone());
                let (served, stop) = (served.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let asked = http.post(&url).json(&ask("auto", &format!("load {i}")));
                        // The kill cuts requests in flight: the client stops there.
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
            .collect();
        // A different moment of the load each round.
        tokio::time::sleep(Duration::from_millis(150 + 13 * round as u64)).await;
        gateway.kill().await;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await.expect("a client task");
        }
        served_total += served.load(Ordering::SeqCst);

        let ledger = inspect(&dir.path().join("freerouter.db")).await;
        assert!(
            ledger.rows as usize >= served_total,
            "round {round}: every served request kept its reservation: {ledger:?}, {served_total} served"
        );
        assert!(
            ledger.rows as usize <= sim.calls("m") + CLIENTS * (round + 1),
            "round {round}: no reservation without a call but those cut by the kills: {ledger:?}"
        );
        assert!(
            (ledger.rows - ledger.settled) as usize <= CLIENTS * (round + 1),
            "round {round}: only requests in flight at a kill stay unsettled: {ledger:?}"
        );
        assert_eq!(
            ledger.live_unsettled,
            ledger.rows - ledger.settled,
            "round {round}: a reservation cut by the kill still counts until it expires: {ledger:?}"
        );
        assert_eq!(
            ledger.unsettled_after_ttl, 0,
            "round {round}: every unsettled reservation expires: {ledger:?}"
        );
        eprintln!(
            "round {round}: {served_total} served, ledger {ledger:?}, {:?}",
            started.elapsed()
        );
    }
    // A last start, to show the file is still good to serve from after the twentieth kill.
    let gateway = config.start_process(GATEWAY, dir.path()).await;
    let last = http
        .post(gateway.url("/v1/chat/completions"))
        .json(&ask("auto", "still here?"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(last.status(), 200);
    gateway.terminate().await;
    eprintln!(
        "{KILLS} kills under load in {:?}, {served_total} requests served",
        started.elapsed()
    );
}
