//! Capacity you can see (issue 13 item 5): when every route of the pool rests, `429
//! quota_exhausted` carries the soonest refill across the pool as `Retry-After`, and its message
//! says which provider is back when.

use freerouter::routing::utc_time;
use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, ask, header};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::Value;

#[tokio::test]
async fn quota_exhausted_says_when_each_provider_refills_and_retry_after_is_the_soonest() {
    let sim = Simulator::start().await;
    let now = now_ms();
    let (soon, later) = (now + 2 * 3_600_000, now + 5 * 3_600_000);
    sim.model("qwen/qwen3-coder:free")
        .then(Behavior::openrouter_free_per_day(later as u64, true));
    sim.model("gemini-2.5-flash")
        .then(Behavior::gemini_exhausted(
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            5,
            "7200s",
        ));
    let gateway = GatewayConfig::new()
        .toml(&format!(
            "[providers.openrouter]\nbase_url = \"{}\"\napi_keys = [\"or-key\"]\n\n[providers.gemini]\nbase_url = \"{}\"\napi_keys = [\"gem-key\"]",
            sim.base_url(),
            sim.url("/v1beta/openai")
        ))
        .route("openrouter", "qwen/qwen3-coder:free", 1)
        .route("gemini", "gemini-2.5-flash", 2)
        .start()
        .await;
    let first = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(
        first.status(),
        429,
        "both refused: {}",
        header(&first, "x-gateway-trail")
    );
    let response = gateway.chat(&ask("auto", "again")).await;
    assert_eq!(response.status(), 429);
    let retry_after: i64 = header(&response, "retry-after").parse().unwrap();
    assert!(
        (retry_after - (soon - now_ms()) / 1000).abs() <= 3,
        "Retry-After {retry_after} s: Gemini's refill in two hours, the soonest"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exhausted");
    let message = body["error"]["message"].as_str().unwrap();
    let gemini_at = message.find("gemini at").expect(message);
    let openrouter_at = message.find("openrouter at").expect(message);
    assert!(gemini_at < openrouter_at, "soonest first: {message}");
    // Within a few seconds of the stated times (the wait is measured from each answer).
    let stated = |at: usize| &message[at..];
    assert!(
        stated(gemini_at).contains(&utc_time(soon)[..5])
            && stated(openrouter_at).contains(&utc_time(later)[..5]),
        "{message}"
    );
}

const ADMINCTL: &str = env!("CARGO_BIN_EXE_adminctl-under-test");

/// Runs adminctl on the gateway's database with the same configuration.
pub(crate) async fn adminctl(
    config: &GatewayConfig,
    dir: &std::path::Path,
    args: &[&str],
) -> String {
    let config_path = dir.join("adminctl.toml");
    let source = config.source(&dir.join("freerouter.db"));
    std::fs::write(&config_path, source.toml.clone().unwrap_or_default()).unwrap();
    let output = tokio::process::Command::new(ADMINCTL)
        .env_clear()
        .envs(source.vars)
        .env("FREEROUTER_CONFIG", &config_path)
        .args(args)
        .output()
        .await
        .expect("adminctl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn adminctl_and_the_console_show_each_window_left_with_its_return_and_forecast_the_pool() {
    let now = now_ms();
    if (now / 86_400_000 + 1) * 86_400_000 - now < 15_000 {
        tokio::time::sleep(std::time::Duration::from_secs(16)).await;
    }
    let sim = Simulator::start().await;
    sim.model("m");
    let config = GatewayConfig::new()
        .toml(&format!(
            "[providers.lab]\nbase_url = \"{}\"\napi_keys = [\"sk-a\", \"sk-b\"]\nlimits = {{ rpd = 5 }}",
            sim.base_url()
        ))
        .route("lab", "m", 1);
    let gateway = config.clone().start().await;
    for _ in 0..2 {
        assert_eq!(gateway.chat(&ask("auto", "hi")).await.status(), 200);
    }
    // The console says the same per key and window (the store is written off the path).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = gateway.get("/status").await.text().await.unwrap();
        if status.contains("back to 5 at 00:00:00 UTC") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/status shows the refill"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dir = gateway.stop().await;
    let show = adminctl(&config, dir.path(), &["quota", "show"]).await;
    // The two requests went one to each key (the roomiest first).
    assert_eq!(show.matches("4/5 left").count(), 2, "{show}");
    assert!(show.contains("back to 5 at 00:00:00 UTC"), "{show}");
    let forecast: Value = serde_json::from_str(
        &adminctl(&config, dir.path(), &["--json", "quota", "forecast"]).await,
    )
    .unwrap();
    assert_eq!(forecast["requests_left_today"], 8, "{forecast}");
    let midnight = (now_ms() / 86_400_000 + 1) * 86_400_000;
    assert_eq!(forecast["next_refill_ms"], midnight);
    let text = adminctl(&config, dir.path(), &["quota", "forecast"]).await;
    assert!(
        text.starts_with("8 requests left today across 2 keys"),
        "{text}"
    );
}

#[tokio::test]
async fn a_rolling_window_is_never_passed_and_the_client_learns_when_its_oldest_request_leaves_it()
{
    let sim = Simulator::start().await;
    sim.model("m");
    let config = GatewayConfig::new()
        .toml(&format!(
            "[providers.hourly]\nbase_url = \"{}\"\napi_keys = [\"sk-h\"]\nlimits = {{ rpm = 100, window_hours = 1, rpwindow = 3 }}",
            sim.base_url()
        ))
        .route("hourly", "m", 1);
    let gateway = config.clone().start().await;
    let first_sent = now_ms();
    for _ in 0..3 {
        assert_eq!(gateway.chat(&ask("auto", "hi")).await.status(), 200);
    }
    let refused = gateway.chat(&ask("auto", "one more")).await;
    assert_eq!(refused.status(), 429);
    let wait: i64 = header(&refused, "retry-after").parse().unwrap();
    // The first request's minute leaves the hour a minute after the hour is up.
    let leaves = (first_sent / 60_000 + 1) * 60_000 + 3_600_000;
    let expected = (leaves - now_ms()) / 1000;
    assert!(
        (wait - expected).abs() <= 15,
        "Retry-After {wait} s, the oldest request leaves the window in {expected} s"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exhausted", "{body}");
    assert_eq!(sim.calls("m"), 3, "the fourth request was never sent");
    let metrics = gateway.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("freerouter_quota_remaining")
                && line.contains("window=\"requests_window\"")
                && line.ends_with(" 0")),
        "{metrics}"
    );
    let dir = gateway.stop().await;
    let show = adminctl(&config, dir.path(), &["quota", "show"]).await;
    assert!(
        show.lines()
            .any(|line| line.contains("requests in the last 1 h") && line.contains("0/3 left")),
        "{show}"
    );
}
