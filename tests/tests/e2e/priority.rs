//! Scarce quota spent where it matters (issue 13 item 6): a low-priority request
//! (`X-FreeRouter-Priority: low`, or a key of `auth.low_priority_keys`) stays off a key's route once
//! its daily window is down to `routing.low_priority_reserve` of its limit; normal and high
//! requests still use everything. The day's turn is tested with time as a parameter in the
//! ledger's own tests (`the_share_of_a_day_left_falls_with_each_request_and_returns_when_the_day_turns`);
//! here a run in the last seconds of a UTC day waits it out.

use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::Simulator;
use serde_json::Value;
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;

async fn clear_of_utc_midnight() {
    let now = now_ms();
    let left = (now / DAY_MS + 1) * DAY_MS - now;
    if left < 15_000 {
        tokio::time::sleep(Duration::from_millis(left as u64 + 100)).await;
    }
}

/// A strong route with 4 requests a day and a weak one without limits; the reserve is half a day.
async fn strong_and_weak(
    extra: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> (Simulator, Simulator, TestGateway) {
    clear_of_utc_midnight().await;
    let (strong, weak) = (Simulator::start().await, Simulator::start().await);
    strong.model("strong");
    weak.model("weak");
    let config = GatewayConfig::new()
        .toml(&format!(
            "[providers.pa]\nbase_url = \"{}\"\napi_keys = [\"sk-pa\"]\nlimits = {{ rpd = 4 }}",
            strong.base_url()
        ))
        .provider("pb", &weak)
        .route("pa", "strong", 1)
        .route("pb", "weak", 2)
        .set("routing.low_priority_reserve", "0.5");
    let gateway = extra(config).start().await;
    (strong, weak, gateway)
}

async fn served(gateway: &TestGateway, priority: Option<&str>, token: Option<&str>) -> String {
    let mut request = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .json(&ask("auto", "hello"));
    if let Some(priority) = priority {
        request = request.header("X-FreeRouter-Priority", priority);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    header(&response, "x-gateway-route")
}

#[tokio::test]
async fn low_priority_requests_leave_the_last_of_a_strong_route_s_day_to_the_others() {
    let (strong, weak, gateway) = strong_and_weak(|c| c).await;
    assert_eq!(served(&gateway, None, None).await, "pa/strong");
    assert_eq!(
        served(&gateway, Some("low"), None).await,
        "pa/strong",
        "4 of 4 left"
    );
    // 2 of 4 left: not below half yet.
    assert_eq!(served(&gateway, Some("low"), None).await, "pa/strong");
    // 1 of 4 left: the reserve.
    assert_eq!(served(&gateway, Some("low"), None).await, "pb/weak");
    assert_eq!(
        served(&gateway, Some("high"), None).await,
        "pa/strong",
        "a person still gets it"
    );
    assert_eq!(served(&gateway, Some("low"), None).await, "pb/weak");
    assert_eq!((strong.calls("strong"), weak.calls("weak")), (4, 2));
}

#[tokio::test]
async fn a_low_priority_request_with_only_reserved_routes_left_is_told_when_the_day_turns() {
    let (strong, _weak, gateway) = strong_and_weak(|c| c).await;
    for _ in 0..3 {
        assert_eq!(served(&gateway, None, None).await, "pa/strong");
    }
    let response = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("X-FreeRouter-Priority", "low")
        .header("X-FreeRouter-Strict", "true")
        .json(&ask("pa/strong", "batch job"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: i64 = header(&response, "retry-after").parse().unwrap();
    let to_midnight = ((now_ms() / DAY_MS + 1) * DAY_MS - now_ms()) / 1000;
    assert!(
        (retry_after - to_midnight).abs() <= 2,
        "Retry-After {retry_after} s, the day turns in {to_midnight} s"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exhausted");
    assert_eq!(strong.calls("strong"), 3, "nothing was sent");
}

#[tokio::test]
async fn a_batch_client_key_is_low_priority_unless_its_requests_say_otherwise() {
    let (_strong, _weak, gateway) = strong_and_weak(|c| {
        c.set("auth.api_keys", "sk-person,sk-batch")
            .set("auth.low_priority_keys", "sk-batch")
    })
    .await;
    for _ in 0..3 {
        assert_eq!(served(&gateway, None, Some("sk-person")).await, "pa/strong");
    }
    assert_eq!(served(&gateway, None, Some("sk-batch")).await, "pb/weak");
    assert_eq!(
        served(&gateway, Some("normal"), Some("sk-batch")).await,
        "pa/strong",
        "its own header wins over the key's default"
    );
}

#[tokio::test]
async fn an_unknown_priority_is_a_400_naming_the_header() {
    let (strong, _weak, gateway) = strong_and_weak(|c| c).await;
    let response = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("X-FreeRouter-Priority", "urgent")
        .json(&ask("auto", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "X-FreeRouter-Priority");
    assert_eq!(strong.calls("strong"), 0);
}
