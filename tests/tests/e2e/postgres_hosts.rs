//! Several hosts on one PostgreSQL database (the real binaries, a real server: `.ci/run` starts a
//! private one and names it in `FREEROUTER_TEST_POSTGRES`; without it these tests skip, except under
//! CI). Gateways and the maintainer share one catalog, one health board and one quota ledger: a
//! burst through three gateways spends a key's RPM together without one upstream 429, a route
//! disabled with `adminctl --db postgres://…` is left by every gateway within 2 s (announced by
//! NOTIFY, not waited for by a poll), a key one gateway saw rate-limited rests on every other at
//! once, and a gateway killed with SIGKILL comes back knowing the cooldowns and quota the others
//! wrote.

use crate::leases::{assert_spent_a_60_rpm_key_together, gateways_on, spend, stop};
use freerouter::store::testing::fresh_postgres_url;
use freerouter_tests::harness::{GatewayConfig, GatewayProcess, clear_of_utc_midnight};
use freerouter_tests::simulator::{Behavior, KeyLimits, Simulator};
use serde_json::json;
use std::time::{Duration, Instant};

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");
const MAINTAINER: &str = env!("CARGO_BIN_EXE_maintainer-under-test");
const ADMINCTL: &str = env!("CARGO_BIN_EXE_adminctl-under-test");

fn client() -> reqwest::Client {
    freerouter_tests::harness::init_tls();
    reqwest::Client::new()
}

/// Which route served one request through `gateway`, and after how many attempts.
async fn served_by(http: &reqwest::Client, gateway: &GatewayProcess) -> (u16, String, String) {
    let response = http
        .post(gateway.url("/v1/chat/completions"))
        .json(&json!({"model": "auto", "max_tokens": 1,
            "messages": [{"role": "user", "content": "which route?"}]}))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (route, attempts) = (header("x-gateway-route"), header("x-gateway-attempts"));
    (response.status().as_u16(), route, attempts)
}

/// Asks `gateway` until `pb/model-b` serves at the first attempt (the route before it left out),
/// or `within` of `since` has passed; whether it did. Every answer meanwhile is a 200.
async fn served_by_pb_within(
    http: &reqwest::Client,
    gateway: &GatewayProcess,
    since: Instant,
    within: Duration,
) -> bool {
    loop {
        let (status, route, attempts) = served_by(http, gateway).await;
        assert_eq!(status, 200);
        if route == "pb/model-b" && attempts == "1" {
            return true;
        }
        if since.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two routes on two simulators: `pa/model-a` first, `pb/model-b` behind it (its key `limits`),
/// on the default SQLite file.
fn two_routes_on_file(a: &Simulator, b: &Simulator, limits: KeyLimits) -> GatewayConfig {
    a.model("model-a").answer("a");
    b.model("model-b").answer("b");
    b.limit_key("sk-b", limits);
    let rpd = limits
        .rpd
        .map(|v| format!(", rpd = {v}"))
        .unwrap_or_default();
    GatewayConfig::new()
        .toml(&format!(
            "[providers.pa]\nbase_url = \"{}\"\napi_keys = [\"sk-a\"]\n\n\
             [providers.pb]\nbase_url = \"{}\"\napi_keys = [\"sk-b\"]\nlimits = {{ rpm = 1000{rpd} }}",
            a.base_url(),
            b.base_url()
        ))
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
}

/// Two routes on `database` with a catalog poll far slower than any promise here: what reaches the
/// gateways in time comes through the database's announcements.
fn announced_only(a: &Simulator, b: &Simulator, database: &str) -> GatewayConfig {
    let limits = KeyLimits {
        rpm: Some(1_000),
        ..KeyLimits::default()
    };
    two_routes(a, b, limits, database).set("catalog.reload_interval_ms", "60000")
}

/// The same on `database`.
fn two_routes(a: &Simulator, b: &Simulator, limits: KeyLimits, database: &str) -> GatewayConfig {
    two_routes_on_file(a, b, limits).on_database(database)
}

#[tokio::test]
async fn three_gateways_and_the_maintainer_on_one_postgres_database_spend_a_keys_rpm_together_with_no_upstream_429()
 {
    let Some(database) = fresh_postgres_url("rpm_burst").await else {
        return;
    };
    clear_of_utc_midnight().await;
    let sim = Simulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let limits = KeyLimits {
        rpm: Some(60),
        rpd: Some(1_000),
        tpm: Some(100_000),
        tpd: None,
    };
    let processes = gateways_on(&sim, limits, 3, &dir, Some(&database)).await;
    // The maintainer on the same database, as a deployment runs it.
    let maintainer = GatewayConfig::new()
        .on_database(&database)
        .start_service(MAINTAINER, dir.path(), "maintainer listening")
        .await;
    let (served, refusals) = spend(&processes, 10, "shared key").await;
    assert_spent_a_60_rpm_key_together(&sim, served, &refusals);
    eprintln!("three gateways on PostgreSQL served {served} of a 60 RPM key");
    maintainer.kill().await;
    stop(processes).await;
}

#[tokio::test]
async fn a_route_disabled_with_adminctl_on_postgres_is_left_by_every_gateway_within_two_seconds() {
    let Some(database) = fresh_postgres_url("disable").await else {
        return;
    };
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    let dir = tempfile::tempdir().unwrap();
    let config = announced_only(&a, &b, &database);
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(config.start_process(GATEWAY, dir.path()).await);
    }
    let http = client();
    for gateway in &gateways {
        assert_eq!(served_by(&http, gateway).await.1, "pa/model-a");
    }

    // adminctl with the services' configuration, the store named on its command line.
    let source = config.source(&dir.path().join("unused.db"));
    let config_path = dir.path().join("adminctl.toml");
    std::fs::write(&config_path, source.toml.clone().unwrap_or_default()).unwrap();
    let output = tokio::process::Command::new(ADMINCTL)
        .env_clear()
        .envs(source.vars)
        .env_remove("FREEROUTER__STORAGE__DATABASE")
        .env("FREEROUTER_CONFIG", &config_path)
        .args(["--db", &database, "models", "disable", "pa/model-a"])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "adminctl failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let disabled_at = Instant::now();
    for (n, gateway) in gateways.iter().enumerate() {
        let left = served_by_pb_within(&http, gateway, disabled_at, Duration::from_secs(2)).await;
        assert!(left, "gateway {n} still used the disabled route after 2 s");
    }
    eprintln!(
        "every gateway left the disabled route within {:?}",
        disabled_at.elapsed()
    );
    stop(gateways).await;
}

#[tokio::test]
async fn a_gateway_killed_with_sigkill_comes_back_on_postgres_knowing_the_cooldowns_and_quota_others_wrote()
 {
    let Some(database) = fresh_postgres_url("sigkill").await else {
        return;
    };
    clear_of_utc_midnight().await;
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    let dir = tempfile::tempdir().unwrap();
    let limits = KeyLimits {
        rpm: Some(1_000),
        rpd: Some(6),
        ..KeyLimits::default()
    };
    let config = two_routes(&a, &b, limits, &database);
    let first = config.start_process(GATEWAY, dir.path()).await;
    let other = config.start_process(GATEWAY, dir.path()).await;
    let http = client();
    assert_eq!(served_by(&http, &first).await.1, "pa/model-a");

    // The other gateway meets a 429 that rests pa's key for two minutes, and spends 3 of pb's 6.
    a.model("model-a").then(Behavior::rate_limited(Some("120")));
    for _ in 0..3 {
        assert_eq!(served_by(&http, &other).await.1, "pb/model-b");
    }
    let calls_to_a = a.calls("model-a");
    // It stops cleanly (its lease's unspent part goes back); the first one crashes.
    other.terminate().await;
    first.kill().await;

    let restarted = config.start_process(GATEWAY, dir.path()).await;
    let (status, route, attempts) = served_by(&http, &restarted).await;
    assert_eq!((status, route.as_str()), (200, "pb/model-b"));
    assert_eq!(attempts, "1", "the resting route was not tried");
    assert_eq!(
        a.calls("model-a"),
        calls_to_a,
        "the restarted gateway never called the key another gateway saw rate-limited"
    );
    // What is left of pb's day is what the others left: 6 - 3 - 1.
    let mut more = 0;
    loop {
        let (status, route, _) = served_by(&http, &restarted).await;
        if status != 200 {
            assert_eq!(
                status, 429,
                "refused as quota_exhausted once the day is spent"
            );
            break;
        }
        assert_eq!(route, "pb/model-b");
        more += 1;
        assert!(more <= 6, "served past the key's day");
    }
    assert_eq!(more, 2, "the rest of pb's 6-request day");
    assert_eq!(b.calls("model-b"), 6);
    assert_eq!(b.limit_refusals(), 0, "the provider never had to refuse");
    restarted.kill().await;
}

#[tokio::test]
async fn a_key_one_gateway_saw_rate_limited_on_postgres_rests_on_every_other_gateway_at_once() {
    let Some(database) = fresh_postgres_url("shared_rest").await else {
        return;
    };
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    let dir = tempfile::tempdir().unwrap();
    let config = announced_only(&a, &b, &database);
    let (seeing, other) = (
        config.start_process(GATEWAY, dir.path()).await,
        config.start_process(GATEWAY, dir.path()).await,
    );
    let http = client();
    assert_eq!(served_by(&http, &other).await.1, "pa/model-a");

    a.model("model-a").then(Behavior::rate_limited(Some("120")));
    assert_eq!(served_by(&http, &seeing).await.1, "pb/model-b");
    let calls_to_a = a.calls("model-a");
    let rested_at = Instant::now();
    // The other gateway met no 429 itself; within a second it no longer tries pa at all.
    let rested = served_by_pb_within(&http, &other, rested_at, Duration::from_secs(1)).await;
    assert!(
        rested,
        "the other gateway still tried the resting key after 1 s"
    );
    eprintln!(
        "the other gateway rested the key after {:?}",
        rested_at.elapsed()
    );
    let before = a.calls("model-a");
    for _ in 0..5 {
        assert_eq!(served_by(&http, &other).await.1, "pb/model-b");
    }
    assert_eq!(a.calls("model-a"), before, "no call to the resting key");
    assert!(before <= calls_to_a + 1);
    stop(vec![seeing, other]).await;
}

#[tokio::test]
async fn adminctl_store_copy_moves_a_sqlite_gateways_catalog_and_quota_use_to_postgres() {
    let Some(database) = fresh_postgres_url("store_copy").await else {
        return;
    };
    clear_of_utc_midnight().await;
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    let dir = tempfile::tempdir().unwrap();
    let limits = KeyLimits {
        rpm: Some(1_000),
        rpd: Some(5),
        ..KeyLimits::default()
    };
    // First on SQLite: pa disabled by hand, three of pb's five daily requests spent.
    let gateway = two_routes_on_file(&a, &b, limits)
        .start_process(GATEWAY, dir.path())
        .await;
    let http = client();
    let file = dir.path().join("freerouter.db");
    let store = freerouter::store::Store::open(&file, Duration::from_secs(5))
        .await
        .unwrap();
    store
        .set_route_enabled("pa/model-a", false, freerouter::time::now_ms())
        .await
        .unwrap();
    store.close().await;
    for _ in 0..3 {
        loop {
            let (status, route, _) = served_by(&http, &gateway).await;
            assert_eq!(status, 200);
            if route == "pb/model-b" {
                break;
            }
        }
    }
    gateway.terminate().await;
    let spent = b.calls("model-b");

    let output = tokio::process::Command::new(ADMINCTL)
        .env_clear()
        .args(["store", "copy", "--from"])
        .arg(&file)
        .args(["--to", &database])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "adminctl failed: {printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("routes: 2 rows"), "{printed}");

    // Then on PostgreSQL: the route stays disabled and the day keeps what was spent.
    let moved = two_routes(&a, &b, limits, &database)
        .start_process(GATEWAY, dir.path())
        .await;
    let mut more = 0;
    loop {
        let (status, route, _) = served_by(&http, &moved).await;
        if status != 200 {
            break;
        }
        assert_eq!(route, "pb/model-b", "the disabled route stays disabled");
        more += 1;
        assert!(more <= 5, "served past the key's day");
    }
    assert_eq!(
        spent + more,
        5,
        "the copied day: {spent} before, {more} after"
    );
    assert_eq!(b.limit_refusals(), 0);
    moved.kill().await;
}
