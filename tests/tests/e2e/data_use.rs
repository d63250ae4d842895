//! Data use as a routing constraint (issue 13 item 7): routes whose provider's terms let it train
//! on prompts (the catalog's `trains_on_prompts`, with its source), or whose own tag says so, are
//! kept out by `routing.exclude` and by `X-FreeRouter-Exclude`, and shown in `/v1/models` and the
//! console.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::Simulator;
use serde_json::Value;

/// Gemini (whose free tier may train on prompts) first, a route of the user's own second, and a
/// third of the user's own tagged `trains-on-prompts`.
async fn gemini_then_lab(
    config: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    for model in ["gemini-2.5-flash", "private", "logged"] {
        sim.model(model);
    }
    let gateway = config(
        GatewayConfig::new()
            .toml(&format!(
                "[providers.gemini]\nbase_url = \"{}\"\napi_keys = [\"gem-key\"]",
                sim.url("/v1beta/openai")
            ))
            .provider("lab", &sim)
            .route("gemini", "gemini-2.5-flash", 1)
            .route_with(
                "lab",
                "logged",
                2,
                "context_window = 100000\ntags = [\"trains-on-prompts\"]",
            )
            .route("lab", "private", 3),
    )
    .start()
    .await;
    (sim, gateway)
}

async fn route_for(gateway: &TestGateway, exclude: Option<&str>) -> reqwest::Response {
    let mut request = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .json(&ask("auto", "my medical history"));
    if let Some(exclude) = exclude {
        request = request.header("X-FreeRouter-Exclude", exclude);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn x_freerouter_exclude_keeps_routes_that_train_on_prompts_out_of_one_request() {
    let (sim, gateway) = gemini_then_lab(|c| c).await;
    let response = route_for(&gateway, None).await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "gemini/gemini-2.5-flash"
    );
    let response = route_for(&gateway, Some("Trains-On-Prompts")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-route"),
        "lab/private",
        "neither the provider's terms nor the route's tag"
    );
    assert_eq!((sim.calls("gemini-2.5-flash"), sim.calls("logged")), (1, 0));
}

#[tokio::test]
async fn routing_exclude_keeps_them_out_of_every_request_and_says_so_when_nothing_is_left() {
    let (_sim, gateway) = gemini_then_lab(|c| c.set("routing.exclude", "trains-on-prompts")).await;
    let response = gateway.chat(&ask("auto", "hello")).await;
    assert_eq!(header(&response, "x-gateway-route"), "lab/private");
    let strict = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("X-FreeRouter-Strict", "true")
        .json(&ask("gemini/gemini-2.5-flash", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), 400);
    let body: Value = strict.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_capability");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("without trains-on-prompts"),
        "{body}"
    );
}

#[tokio::test]
async fn the_flag_and_its_source_are_shown_in_v1_models_and_the_console() {
    let (_sim, gateway) = gemini_then_lab(|c| c).await;
    let models: Value = gateway.get("/v1/models").await.json().await.unwrap();
    let entry = |id: &str| {
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} listed"))
    };
    let gemini = entry("gemini/gemini-2.5-flash");
    assert_eq!(gemini["trains_on_prompts"], true);
    assert!(
        gemini["trains_on_prompts_source"]
            .as_str()
            .unwrap()
            .contains("ai.google.dev/gemini-api/terms")
    );
    assert_eq!(entry("lab/logged")["trains_on_prompts"], true);
    assert_eq!(entry("lab/private")["trains_on_prompts"], false);
    let page = gateway.get("/models").await.text().await.unwrap();
    assert!(
        page.contains("trains on prompts"),
        "the console shows the flag"
    );
}

#[tokio::test]
async fn an_owner_who_reads_the_terms_otherwise_can_clear_a_provider_s_flag() {
    let (_sim, gateway) = gemini_then_lab(|c| {
        c.set("routing.exclude", "trains-on-prompts")
            .set("providers.gemini.trains_on_prompts", "false")
    })
    .await;
    let response = gateway.chat(&ask("auto", "hello from the EEA")).await;
    assert_eq!(
        header(&response, "x-gateway-route"),
        "gemini/gemini-2.5-flash"
    );
}
