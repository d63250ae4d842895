//! The original FreeRouter's admin paths, served beside today's body-based forms through the same
//! handlers and auth: the route id as the path tail (it holds `/`; URL-encoded or not).

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::Value;
use std::time::{Duration, Instant};

const TOKEN: &str = "admin-token-original";

async fn two_routes() -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("org/m1");
    sim.model("m2");
    let gateway = GatewayConfig::new()
        .provider("lab", &sim)
        .route("lab", "org/m1", 1)
        .route("lab", "m2", 2)
        .set("auth.admin_token", TOKEN)
        .start()
        .await;
    (sim, gateway)
}

async fn post(gateway: &TestGateway, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = gateway.http.post(gateway.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the gateway answers")
}

/// Polls until the gateway routes to `route_id` (it reloads the catalog within about a second).
async fn routes_to(gateway: &TestGateway, route_id: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let response = gateway.chat(&ask("auto", "hi")).await;
        if header(&response, "x-gateway-route") == route_id {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn the_original_disable_and_enable_paths_take_the_route_id_as_the_path_tail() {
    let (_sim, gateway) = two_routes().await;
    assert!(routes_to(&gateway, "lab/org/m1").await);
    let disabled = post(
        &gateway,
        "/v1/gateway/models/lab/org/m1/disable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(disabled.status(), 200, "{}", disabled.text().await.unwrap());
    let body: Value = disabled.json().await.unwrap();
    assert_eq!(body["route"], "lab/org/m1");
    assert_eq!(body["enabled"], false);
    assert!(
        routes_to(&gateway, "lab/m2").await,
        "the disabled route is left"
    );
    // URL-encoded, the same route.
    let enabled = post(
        &gateway,
        "/v1/gateway/models/lab%2Forg%2Fm1/enable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(enabled.status(), 200);
    assert!(routes_to(&gateway, "lab/org/m1").await, "back in service");
    // Today's body form still works beside it.
    let form = gateway
        .http
        .post(gateway.url("/v1/gateway/models/disable"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"route": "lab/m2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
}

#[tokio::test]
async fn the_original_paths_need_the_admin_token_like_the_others() {
    let (_sim, gateway) = two_routes().await;
    let anonymous = post(&gateway, "/v1/gateway/models/lab/org/m1/disable", None).await;
    assert_eq!(anonymous.status(), 401);
    let wrong = post(
        &gateway,
        "/v1/gateway/models/lab/org/m1/disable",
        Some("nope"),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let unknown = post(
        &gateway,
        "/v1/gateway/models/lab/nothing/disable",
        Some(TOKEN),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let nonsense = post(
        &gateway,
        "/v1/gateway/models/lab/org/m1/frobnicate",
        Some(TOKEN),
    )
    .await;
    assert_eq!(nonsense.status(), 404);
    assert!(routes_to(&gateway, "lab/org/m1").await, "nothing changed");
}

#[tokio::test]
async fn the_original_health_reset_path_brings_a_cooling_route_back() {
    let (sim, gateway) = two_routes().await;
    sim.model("org/m1")
        .then(Behavior::rate_limited(Some("3600")));
    assert!(
        routes_to(&gateway, "lab/m2").await,
        "rank 1 is cooling for an hour"
    );
    let reset = post(
        &gateway,
        "/v1/gateway/models/lab/org/m1/health/reset",
        Some(TOKEN),
    )
    .await;
    assert_eq!(reset.status(), 200, "{}", reset.text().await.unwrap());
    assert!(
        routes_to(&gateway, "lab/org/m1").await,
        "the cooldown is gone"
    );
}

#[tokio::test]
async fn the_original_provider_status_path_answers_what_the_gateway_path_does() {
    let (_sim, gateway) = two_routes().await;
    let original: Value = gateway
        .get("/v1/providers/status")
        .await
        .json()
        .await
        .unwrap();
    let today: Value = gateway
        .get("/v1/gateway/providers/status")
        .await
        .json()
        .await
        .unwrap();
    assert!(original["providers"].is_array());
    assert_eq!(
        original["providers"][0]["name"],
        today["providers"][0]["name"]
    );
}
