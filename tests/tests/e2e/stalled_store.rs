//! A stalled store never stalls clients (issue 15, item 8): another process holds SQLite's write
//! lock for 15 s. Requests are answered within their deadline all along — a key with room for many
//! requests goes on unreserved, a small one is skipped (429 `quota_exhausted`), both counted in
//! `freerouter_quota_unreserved_total` — and afterwards the ledger counts every request sent
//! exactly once: no write that our side gave up waiting for lands twice.

use freerouter::config::Secret;
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask};
use freerouter_tests::simulator::Simulator;
use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::time::{Duration, Instant};

const STALL: Duration = Duration::from_secs(15);
const DEADLINE_MS: u64 = 3_000;

/// A `/metrics` sample's value, if the series is there.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| line.starts_with(name))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn strict_small(gateway: &TestGateway, client: &reqwest::Client) -> reqwest::Response {
    client
        .post(gateway.url("/v1/chat/completions"))
        .header("x-freerouter-strict", "true")
        .json(&ask("stallsmall/small-model", "small"))
        .send()
        .await
        .expect("the gateway answers within the deadline")
}

#[tokio::test]
async fn a_write_lock_held_elsewhere_for_15_s_leaves_requests_answered_and_the_ledger_exact() {
    let sim = Simulator::start().await;
    sim.model("big-model");
    sim.model("small-model");
    let gateway = GatewayConfig::new()
        .set("routing.deadline_ms", &DEADLINE_MS.to_string())
        .set("quota.lease_ttl_ms", "1000")
        .set("quota.refresh_ms", "200")
        .toml(&format!(
            "[providers.stallbig]\nbase_url = \"{url}\"\napi_keys = [\"sk-big\"]\nlimits = {{ rpd = 1000000 }}\n\n\
             [providers.stallsmall]\nbase_url = \"{url}\"\napi_keys = [\"sk-small\"]\nlimits = {{ rpm = 5 }}",
            url = sim.base_url()
        ))
        .route("stallbig", "big-model", 1)
        .route("stallsmall", "small-model", 2)
        .start()
        .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(DEADLINE_MS + 1_000))
        .build()
        .unwrap();
    // Both keys seen once; their leases end before the stall, so it must be met anew.
    assert_eq!(gateway.chat(&ask("auto", "before")).await.status(), 200);
    assert_eq!(strict_small(&gateway, &client).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let mut outside = SqliteConnectOptions::new()
        .filename(&gateway.db_path)
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut outside)
        .await
        .unwrap();
    let locked = Instant::now();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(STALL).await;
        sqlx::query("COMMIT").execute(&mut outside).await.unwrap();
        outside.close().await.unwrap();
    });

    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (client, url) = (client.clone(), gateway.url("/v1/chat/completions"));
            tokio::spawn(async move {
                let mut served = 0;
                while locked.elapsed() < STALL - Duration::from_secs(1) {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .json(&ask("auto", &format!("during the stall {i}")))
                        .send()
                        .await
                        .expect("answered within the deadline");
                    assert_eq!(response.status(), 200, "after {:?}", sent.elapsed());
                    served += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                served
            })
        })
        .collect();
    let mut skipped = 0;
    while locked.elapsed() < STALL - Duration::from_secs(1) {
        let response = strict_small(&gateway, &client).await;
        assert_eq!(
            response.status(),
            429,
            "a small key is skipped, not waited for"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "quota_exhausted");
        skipped += 1;
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    let mut served = 0;
    for task in clients {
        served += task.await.expect("a client");
    }
    assert!(
        served > 20 && skipped > 5,
        "{served} served, {skipped} skipped"
    );
    holder.await.unwrap();

    let metrics = gateway.get("/metrics").await.text().await.unwrap();
    let name = "freerouter_quota_unreserved_total";
    let sent = sample(
        &metrics,
        name,
        &["provider=\"stallbig\"", "outcome=\"sent\""],
    );
    let refused = sample(
        &metrics,
        name,
        &["provider=\"stallsmall\"", "outcome=\"skipped\""],
    );
    assert!(sent.is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(refused.is_some_and(|n| n >= 1.0), "{metrics}");

    // After the stall, and a clean stop, the ledger holds each request once.
    let big_calls = sim.calls("big-model") as i64;
    let db = gateway.db_path.clone();
    let _dir = gateway.stop().await;
    let mut conn = SqliteConnectOptions::new()
        .filename(&db)
        .connect()
        .await
        .unwrap();
    let (doubled,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT holder, seq FROM quota_ledger WHERE holder IS NOT NULL
          GROUP BY holder, seq HAVING COUNT(*) > 1)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(doubled, 0, "no write landed twice");
    let (unsettled, counted): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(settled = 0), 0), COALESCE(SUM(requests), 0)
           FROM quota_ledger WHERE provider = 'stallbig' AND key_id = ?",
    )
    .bind(Secret::new("sk-big").fingerprint())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(unsettled, 0);
    assert_eq!(
        counted, big_calls,
        "every request sent on the large key counted exactly once, the unreserved ones included"
    );
    conn.close().await.unwrap();
}
