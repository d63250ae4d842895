//! The per-key quota gauges of `/metrics` come from what the gateway keeps in memory, not from a
//! store query per key per scrape: a scrape still reports them when the store cannot be read.

use freerouter::config::Secret;
use freerouter_tests::harness::{GatewayConfig, ask};
use freerouter_tests::simulator::Simulator;

#[tokio::test]
async fn the_quota_gauges_are_published_from_memory_even_when_the_store_cannot_be_read() {
    let sim = Simulator::start().await;
    sim.model("gauge-model");
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.gaugep]\nbase_url = \"{}\"\napi_keys = [\"sk-gauge\"]\nlimits = {{ rpm = 10, rpd = 100 }}",
            sim.base_url()
        ))
        .route("gaugep", "gauge-model", 1)
        .start()
        .await;
    for _ in 0..3 {
        assert_eq!(gateway.chat(&ask("auto", "count me")).await.status(), 200);
    }
    // From here on no read of the store succeeds.
    gateway.gateway.store.close().await;
    let metrics = gateway.get("/metrics").await.text().await.unwrap();
    let key = Secret::new("sk-gauge").fingerprint();
    let value = |name: &str, window: &str| {
        metrics
            .lines()
            .find(|line| {
                line.starts_with(name)
                    && line.contains("provider=\"gaugep\"")
                    && line.contains(&format!("key=\"{key}\""))
                    && line.contains(&format!("window=\"{window}\""))
            })
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(
        value("freerouter_quota_limit", "requests_day"),
        Some(100.0),
        "{metrics}"
    );
    assert_eq!(
        value("freerouter_quota_remaining", "requests_day"),
        Some(97.0),
        "{metrics}"
    );
    assert_eq!(
        value("freerouter_quota_remaining", "requests_minute"),
        Some(7.0),
        "{metrics}"
    );
}
