//! What lives in SQLite: cooldowns that survive a restart, catalog changes made by another process,
//! and the request log written in batches.

use freerouter::store::Store;
use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::{Behavior, Simulator};
use std::time::{Duration, Instant};

fn config(a: &Simulator, b: &Simulator) -> GatewayConfig {
    a.model("model-a");
    b.model("model-b");
    GatewayConfig::new()
        .provider("pa", a)
        .provider("pb", b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
}

/// Asks until `route` serves, and returns how long that took (or panics after `limit`).
async fn time_until_served_by(gateway: &TestGateway, route: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let response = gateway.chat(&ask("auto", "which route?")).await;
        if header(&response, "x-gateway-route") == route {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{route} did not serve within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_restarted_gateway_remembers_a_cooldown_that_is_still_running() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    let first = config(&a, &b).start().await;
    a.model("model-a").then(Behavior::rate_limited(Some("120")));
    let response = first.chat(&ask("auto", "hello")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    let dir = first.stop().await;

    let second = config(&a, &b).in_dir(dir).start().await;
    let response = second.chat(&ask("auto", "hello again")).await;
    assert_eq!(header(&response, "x-gateway-route"), "pb/model-b");
    assert_eq!(header(&response, "x-gateway-attempts"), "1");
    assert_eq!(
        a.calls("model-a"),
        1,
        "the restarted gateway did not call the cooling route"
    );
}

#[tokio::test]
async fn a_route_disabled_or_reranked_by_another_process_is_honoured_within_two_seconds() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    // The default poll interval: the promise is about what users run.
    let gateway = config(&a, &b)
        .set("catalog.reload_interval_ms", "1000")
        .start()
        .await;
    assert_eq!(
        header(&gateway.chat(&ask("auto", "hi")).await, "x-gateway-route"),
        "pa/model-a"
    );

    // Another process: its own connection pool on the same file.
    let other = Store::open(&gateway.db_path, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        other
            .set_route_enabled("pa/model-a", false, now_ms())
            .await
            .unwrap()
    );
    let took = time_until_served_by(&gateway, "pb/model-b", Duration::from_secs(2)).await;
    eprintln!("disable honoured after {took:?}");

    assert!(
        other
            .set_route_enabled("pa/model-a", true, now_ms())
            .await
            .unwrap()
    );
    assert!(
        other
            .set_route_rank("pb/model-b", 0, now_ms())
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Re-enabled rank 1 must not win: rank 0 now comes first.
    let took = time_until_served_by(&gateway, "pb/model-b", Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let response = gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "pb/model-b",
        "rank 0 now comes first (after {took:?})"
    );
}

#[tokio::test]
async fn every_request_lands_in_the_request_log_off_the_hot_path() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    let gateway = config(&a, &b).start().await;
    a.model("model-a").then(Behavior::rate_limited(Some("60")));
    for _ in 0..5 {
        assert_eq!(gateway.chat(&ask("auto", "log me")).await.status(), 200);
    }
    assert_eq!(gateway.chat_raw("{broken").await.status(), 400);
    let store = gateway.gateway.store.clone();
    let started = Instant::now();
    while store.count_request_logs().await.unwrap() < 6 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the log was not written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = store.recent_request_logs(10).await.unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0].status, 400);
    assert_eq!(rows[0].outcome, "invalid_request");
    let fallback = rows
        .iter()
        .find(|r| r.attempts == 2)
        .expect("the request that fell back");
    assert_eq!(fallback.trail, "pa/model-a:429,pb/model-b:ok");
    assert_eq!(fallback.route_id.as_deref(), Some("pb/model-b"));
    assert!(fallback.tokens_out.unwrap() > 0);
}

/// The key's day use as the gateway reports it, and what its leases hold unspent.
async fn reported_day_use(gateway: &TestGateway) -> (u64, u64) {
    let status: serde_json::Value = gateway
        .get("/v1/gateway/providers/status")
        .await
        .json()
        .await
        .unwrap();
    let provider = status["providers"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "p"))
        .unwrap_or_else(|| panic!("no provider p in {status}"));
    let key = &provider["keys"][0];
    let requests = |v: &serde_json::Value| {
        v["day_requests"]
            .as_u64()
            .unwrap_or_else(|| panic!("no day use in {status}"))
    };
    (requests(&key["usage"]), requests(&key["held"]))
}

#[tokio::test]
async fn a_keys_reported_use_is_what_was_sent_and_a_restart_keeps_it() {
    let sim = Simulator::start().await;
    sim.model("m").answer("ok");
    let config = || {
        GatewayConfig::new()
            .toml(&format!(
                "[providers.p]\nbase_url = \"{}\"\napi_keys = [\"sk-one\"]\nlimits = {{ rpm = 1000, rpd = 10000 }}",
                sim.base_url()
            ))
            .route("p", "m", 1)
    };
    let first = config().start().await;
    for _ in 0..20 {
        assert_eq!(first.chat(&ask("auto", "count me")).await.status(), 200);
    }
    let (used, held) = reported_day_use(&first).await;
    assert!(
        held > 0,
        "the gateway holds a lease with requests left, so the report has something to tell apart"
    );
    assert_eq!(
        used, 20,
        "the report counts what was sent, not the leases held"
    );
    let dir = first.stop().await;

    let second = config().in_dir(dir).start().await;
    assert_eq!(
        reported_day_use(&second).await,
        (20, 0),
        "the restart gave the unspent leases back and kept every request sent"
    );
}
