//! `/metrics`: valid Prometheus exposition (checked by promtool) with the series DESIGN.md §10 names.

use freerouter_tests::harness::{GatewayConfig, ask, ask_stream, sse_data};
use freerouter_tests::simulator::{Behavior, Simulator};
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `promtool check metrics` on the text; `None` when promtool is missing outside CI.
fn promtool_check(text: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing in CI: .ci/run installs Debian's prometheus package"
        );
        eprintln!("skipping the promtool check: install Debian's `prometheus` package to run it");
        return None;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), report))
}

#[tokio::test]
async fn metrics_pass_promtool_and_hold_the_designed_series_with_low_cardinality_labels() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").then(Behavior::rate_limited(Some("60")));
    b.model("model-b");
    let gateway = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2)
        .start()
        .await;
    assert_eq!(gateway.chat(&ask("auto", "one")).await.status(), 200);
    let _ = sse_data(gateway.chat(&ask_stream("auto", "two")).await).await;
    let response = gateway.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for series in [
        "freerouter_requests_total{",
        "freerouter_upstream_attempts_total{",
        "freerouter_fallbacks_total{reason=\"429\"}",
        "freerouter_request_duration_seconds_bucket{",
        "freerouter_upstream_time_to_first_token_seconds_bucket{",
        "freerouter_requests_in_flight",
        "freerouter_requests_queued",
        "freerouter_queue_timeouts_total{",
        "freerouter_route_health{",
        "freerouter_route_rank{",
        "freerouter_route_enabled{",
        "freerouter_tokens_total{",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(text.contains("result=\"429\"") && text.contains("route=\"pa/model-a\""));
    // Labels never carry a key or a client address.
    assert!(
        !text.contains("sk-sim-"),
        "a provider key leaked into metrics"
    );
    assert!(
        !text.contains("127.0.0.1"),
        "a client address leaked into metrics"
    );
    if let Some((ok, report)) = promtool_check(&text) {
        assert!(ok, "promtool check metrics failed:\n{report}");
    }
}
