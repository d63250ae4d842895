//! Clients that try their luck: made-up tokens to dodge the per-client limit, a burst of the
//! owner's own agents, guesses at the admin token over the API and the console, and readers
//! looking for credentials in what the gateway shows.

use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::Simulator;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const ADMINCTL: &str = env!("CARGO_BIN_EXE_adminctl-under-test");

async fn code_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let retry_after = header(&response, "retry-after");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or(if status == 200 { "ok" } else { "?" })
        .to_string();
    (status, code, retry_after)
}

#[tokio::test]
async fn a_200_request_burst_from_50_local_clients_gets_answers_and_quota_exhausted_never_rate_limited()
 {
    let sim = Simulator::start().await;
    sim.model("m");
    // The owner's agents on this machine, the gateway at its defaults: only 30 requests of
    // quota are left today.
    let gateway = GatewayConfig::new()
        .unset("limits.per_client_burst")
        .toml(&format!(
            "[providers.p]\nbase_url = \"{}\"\napi_keys = [\"sk-p\"]\nlimits = {{ rpd = 30 }}",
            sim.base_url()
        ))
        .route("p", "m", 1)
        .start()
        .await;
    let gateway = Arc::new(gateway);
    let clients: Vec<_> = (0..50)
        .map(|client| {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let mut codes = Vec::new();
                for i in 0..4 {
                    let response = gateway
                        .chat(&ask("auto", &format!("agent {client} #{i}")))
                        .await;
                    codes.push(code_of(response).await.1);
                }
                codes
            })
        })
        .collect();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for client in clients {
        for code in client.await.unwrap() {
            *tally.entry(code).or_default() += 1;
        }
    }
    assert_eq!(tally.values().sum::<usize>(), 200);
    assert_eq!(
        tally.keys().cloned().collect::<Vec<_>>(),
        ["ok", "quota_exhausted"],
        "only answers and quota_exhausted: {tally:?}"
    );
    assert_eq!(tally["ok"], 30, "{tally:?}");
}

async fn limited(settings: &[(&str, &str)]) -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("m");
    let mut config = GatewayConfig::new()
        .provider("p", &sim)
        .route("p", "m", 1)
        .set("limits.per_client_burst", "2")
        .set("limits.per_client_per_second", "1");
    for (key, value) in settings {
        config = config.set(key, value);
    }
    (sim, config.start().await)
}

#[tokio::test]
async fn a_fresh_random_bearer_token_on_every_request_still_counts_against_the_senders_bucket() {
    let (sim, gateway) = limited(&[]).await;
    let mut codes = Vec::new();
    for i in 0..8 {
        let response = gateway
            .http
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(format!("made-up-{i}-{}", uuid_like(i)))
            .json(&ask("auto", "hi"))
            .send()
            .await
            .unwrap();
        codes.push(code_of(response).await);
    }
    let refused: Vec<_> = codes.iter().filter(|(s, _, _)| *s == 429).collect();
    assert!(
        !refused.is_empty(),
        "8 quick requests with 8 invented tokens are one client over a burst of 2: {codes:?}"
    );
    assert!(
        refused
            .iter()
            .all(|(_, code, retry)| code == "rate_limited" && !retry.is_empty())
    );
    assert!(sim.calls("m") < 8);
}

fn uuid_like(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[tokio::test]
async fn whitespace_variants_of_one_client_key_share_its_bucket_and_another_key_has_its_own() {
    let (_sim, gateway) = limited(&[("auth.api_keys", "sk-a,sk-b")]).await;
    let variants = [
        ("authorization", "Bearer sk-a"),
        ("authorization", "Bearer  sk-a"),
        ("authorization", "bearer sk-a"),
    ];
    let mut codes = Vec::new();
    for round in 0..2 {
        for (name, value) in variants {
            let response = gateway
                .http
                .post(gateway.url("/v1/chat/completions"))
                .header(name, value)
                .json(&ask("auto", &format!("round {round}")))
                .send()
                .await
                .unwrap();
            codes.push(code_of(response).await.1);
        }
    }
    assert!(
        codes.iter().any(|c| c == "rate_limited"),
        "six requests with one key (three spellings) are one client over a burst of 2: {codes:?}"
    );
    let other = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sk-b")
        .json(&ask("auto", "me too"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200, "another key is another client");
    let unknown = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sk-invented")
        .json(&ask("auto", "me?"))
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(unknown).await.1, "invalid_api_key");
}

const ADMIN: &str = "admin-right-7c41";

async fn with_admin(settings: &[(&str, &str)]) -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("m");
    let mut config = GatewayConfig::new()
        .set("auth.admin_token", ADMIN)
        .provider("p", &sim)
        .route("p", "m", 1);
    for (key, value) in settings {
        config = config.set(key, value);
    }
    (sim, config.start().await)
}

async fn health_reset(gateway: &TestGateway, token: &str) -> (u16, String, String) {
    let response = gateway
        .http
        .post(gateway.url("/v1/gateway/health/reset"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    code_of(response).await
}

#[tokio::test]
async fn guessing_the_admin_token_is_throttled_and_the_right_token_works_after_the_window() {
    let (_sim, gateway) = with_admin(&[
        ("auth.failed_auth_per_client", "3"),
        ("auth.failed_auth_window_ms", "1500"),
    ])
    .await;
    for guess in ["admin", "password", "admin-right-7c40"] {
        assert_eq!(health_reset(&gateway, guess).await.1, "invalid_admin_token");
    }
    let (status, code, retry_after) = health_reset(&gateway, "admin-right-7c42").await;
    assert_eq!((status, code.as_str()), (429, "too_many_failed_attempts"));
    let wait: u64 = retry_after.parse().expect("a Retry-After in seconds");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let (status, ..) = health_reset(&gateway, ADMIN).await;
    assert_eq!(
        status, 429,
        "while throttled not even the right token is checked (else the 429 would tell guesses apart)"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(health_reset(&gateway, ADMIN).await.0, 200);
}

#[tokio::test]
async fn guesses_spread_over_every_client_meet_the_overall_limit() {
    let (_sim, gateway) = with_admin(&[
        ("auth.failed_auth_per_client", "100"),
        ("auth.failed_auth_total", "2"),
    ])
    .await;
    assert_eq!(health_reset(&gateway, "guess-1").await.0, 401);
    assert_eq!(health_reset(&gateway, "guess-2").await.0, 401);
    assert_eq!(health_reset(&gateway, "guess-3").await.0, 429);
}

#[tokio::test]
async fn guessing_at_the_console_sign_in_is_throttled_and_the_right_token_signs_in_after_the_window()
 {
    let (_sim, gateway) = with_admin(&[
        ("auth.failed_auth_per_client", "2"),
        ("auth.failed_auth_window_ms", "1500"),
    ])
    .await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |token: &'static str| {
        browser
            .post(gateway.url("/login"))
            .header("origin", gateway.url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}", token))
            .send()
    };
    assert_eq!(sign_in("letmein").await.unwrap().status(), 401);
    assert_eq!(sign_in("hunter2").await.unwrap().status(), 401);
    let throttled = sign_in(ADMIN).await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert!(!header(&throttled, "retry-after").is_empty());
    assert!(throttled.headers().get("set-cookie").is_none());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let signed_in = sign_in(ADMIN).await.unwrap();
    assert_eq!(signed_in.status(), 303);
    assert!(header(&signed_in, "set-cookie").starts_with("freerouter_console="));
}

#[tokio::test]
async fn with_client_keys_configured_the_admin_api_takes_the_admin_token_and_only_there() {
    let (sim, gateway) = with_admin(&[("auth.api_keys", "sk-client-1")]).await;
    let http = &gateway.http;
    let disabled = http
        .post(gateway.url("/v1/gateway/models/disable"))
        .bearer_auth(ADMIN)
        .json(&json!({"route": "p/m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200, "{:?}", disabled.text().await);
    let listing = http
        .get(gateway.url("/v1/gateway/models"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 200);
    let enabled = http
        .post(gateway.url("/v1/gateway/models/enable"))
        .bearer_auth(ADMIN)
        .json(&json!({"route": "p/m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);
    // The admin token is not a client key...
    let chat = http
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(ADMIN)
        .json(&ask("auto", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(chat).await.1, "invalid_api_key");
    // ...and a client key is not the admin token.
    let by_client = http
        .post(gateway.url("/v1/gateway/models/disable"))
        .bearer_auth("sk-client-1")
        .json(&json!({"route": "p/m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(by_client).await.1, "invalid_admin_token");
    let served = http
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sk-client-1")
        .json(&ask("auto", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(sim.calls("m"), 1);
}

#[tokio::test]
async fn a_scrape_without_the_metrics_token_is_refused_and_guesses_are_throttled() {
    let sim = Simulator::start().await;
    sim.model("m");
    let gateway = GatewayConfig::new()
        .set("auth.metrics_token", "metrics-9d1")
        .set("auth.failed_auth_per_client", "2")
        .provider("p", &sim)
        .route("p", "m", 1)
        .start()
        .await;
    let scrape = |token: Option<&'static str>| {
        let mut request = gateway.http.get(gateway.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let anonymous = scrape(None).await.unwrap();
    assert_eq!(code_of(anonymous).await.1, "invalid_metrics_token");
    let scraped = scrape(Some("metrics-9d1")).await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("freerouter_"));
    assert_eq!(scrape(Some("guess-a")).await.unwrap().status(), 401);
    assert_eq!(scrape(Some("guess-b")).await.unwrap().status(), 401);
    assert_eq!(scrape(Some("metrics-9d1")).await.unwrap().status(), 429);
    assert_eq!(
        gateway.get("/health").await.status(),
        200,
        "probes stay open"
    );
}

#[tokio::test]
async fn credentials_in_a_base_url_never_show_in_the_admin_api_the_console_or_adminctl() {
    let sim = Simulator::start().await;
    let port = sim.addr().port();
    let config = GatewayConfig::new()
        .set("auth.admin_token", ADMIN)
        .toml(&format!(
            "[providers.lab]\nbase_url = \"http://lab-user:hunter2-pw@127.0.0.1:{port}/v1?key=sekrit-q\"\napi_keys = [\"sk-lab\"]"
        ))
        .route("lab", "m", 1);
    let gateway = config.clone().start().await;
    let status: Value = gateway
        .get("/v1/gateway/providers/status")
        .await
        .json()
        .await
        .unwrap();
    let lab = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lab")
        .expect("the lab provider")
        .clone();
    assert_eq!(
        lab["base_url"],
        format!("http://***@127.0.0.1:{port}/v1?key=***")
    );
    let shown = [
        status.to_string(),
        gateway.get("/status").await.text().await.unwrap(),
        gateway.get("/").await.text().await.unwrap(),
    ];
    let dir = gateway.dir.clone();
    let config_path = dir.path().join("adminctl.toml");
    let source = config.source(&gateway.db_path);
    std::fs::write(&config_path, source.toml.clone().unwrap_or_default()).unwrap();
    let mut outputs = Vec::new();
    for args in [
        &["providers", "status"][..],
        &["--json", "providers", "status"],
        &["config", "check"],
    ] {
        let output = tokio::process::Command::new(ADMINCTL)
            .env_clear()
            .envs(source.vars.clone())
            .env("FREEROUTER_CONFIG", &config_path)
            .args(args)
            .output()
            .await
            .unwrap();
        outputs.push(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    assert!(
        outputs[1].contains("***@127.0.0.1"),
        "adminctl shows the redacted URL: {}",
        outputs[1]
    );
    for text in shown.iter().chain(&outputs) {
        for secret in ["hunter2-pw", "lab-user", "sekrit-q"] {
            assert!(!text.contains(secret), "{secret} shown in: {text}");
        }
    }
}
