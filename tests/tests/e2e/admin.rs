//! adminctl and the admin API: every subcommand on a real file, the two faces giving the same
//! result, mutations refused without the admin token, and provider keys never shown anywhere.

use freerouter::store::{Store, SuggestionKind};
use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, ServiceProcess, ask, init_tls};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");
const MAINTAINER: &str = env!("CARGO_BIN_EXE_maintainer-under-test");
const ADMINCTL: &str = env!("CARGO_BIN_EXE_adminctl-under-test");
const SECRET: &str = "sk-sim-SECRET-4f7a9c";

fn config(sim: &Simulator) -> GatewayConfig {
    GatewayConfig::new()
        .set("auth.admin_token", "admin-token-1")
        .toml(&format!(
            "[providers.lab]\nbase_url = \"{}\"\napi_key_env = \"LAB_API_KEY\"",
            sim.base_url()
        ))
        .env_var("LAB_API_KEY", SECRET)
        .route("lab", "m1", 1)
        .route("lab", "m2", 2)
}

/// Runs adminctl on the database in `dir` with the same configuration the services have
/// (asynchronously: the in-process simulator must keep answering meanwhile).
async fn adminctl(dir: &Path, config: &GatewayConfig, args: &[&str]) -> Output {
    let config_path = dir.join("adminctl.toml");
    let source = config.source(&dir.join("freerouter.db"));
    std::fs::write(&config_path, source.toml.clone().unwrap_or_default()).unwrap();
    tokio::process::Command::new(ADMINCTL)
        .env_clear()
        .envs(source.vars)
        .env("FREEROUTER_CONFIG", &config_path)
        .args(args)
        .output()
        .await
        .unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "adminctl failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

async fn store(dir: &Path) -> Store {
    Store::open(&dir.join("freerouter.db"), Duration::from_secs(5))
        .await
        .unwrap()
}

#[tokio::test]
async fn every_adminctl_subcommand_works_on_a_temporary_database() {
    let sim = Simulator::start().await;
    sim.model("m1");
    sim.model("m2");
    sim.list_extra(json!({"id": "new:free", "object": "model"}));
    sim.model("new:free");
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let config = config(&sim);
    let run = |args: &'static [&'static str]| adminctl(dir, &config, args);

    assert!(ok(&run(&["models", "list"]).await).contains("lab/m1"));
    let listed: Value =
        serde_json::from_str(&ok(&run(&["--json", "models", "list"]).await)).unwrap();
    assert_eq!(listed["routes"].as_array().unwrap().len(), 2);
    let shown: Value =
        serde_json::from_str(&ok(&run(&["models", "show", "lab/m2"]).await)).unwrap();
    assert_eq!(shown["route"]["rank"], 2);
    assert!(ok(&run(&["models", "disable", "lab/m1"]).await).contains("disabled"));
    assert!(
        !store(dir)
            .await
            .get_route("lab/m1")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    ok(&run(&["models", "enable", "lab/m1"]).await);
    ok(&run(&["models", "rank", "lab/m2", "0"]).await);
    assert_eq!(
        store(dir)
            .await
            .get_route("lab/m2")
            .await
            .unwrap()
            .unwrap()
            .rank,
        0
    );
    let moved: Value =
        serde_json::from_str(&ok(&run(&["--json", "models", "auto-rank"]).await)).unwrap();
    assert!(moved.as_array().is_some());
    let missing = run(&["models", "enable", "lab/nope"]).await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no route \"lab/nope\""));
    let refused = run(&["models", "reset"]).await;
    assert!(
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("--yes")
    );
    ok(&run(&["--yes", "models", "reset"]).await);

    let report: Value =
        serde_json::from_str(&ok(&run(&["--json", "diagnosis", "run"]).await)).unwrap();
    assert_eq!(report["providers_checked"], json!(["lab"]), "{report}");
    assert!(ok(&run(&["diagnosis", "show"]).await).contains("lab/new:free"));
    let pending = store(dir)
        .await
        .pending_suggestion(SuggestionKind::AddRoute, "lab/new:free")
        .await
        .unwrap()
        .unwrap();
    let id = pending.id.to_string();
    ok(&adminctl(dir, &config, &["diagnosis", "apply", &id]).await);
    assert!(
        store(dir)
            .await
            .get_route("lab/new:free")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    ok(&run(&["--json", "diagnosis", "run"]).await);
    ok(&run(&["models", "disable", "lab/new:free"]).await);
    // A second discovered route, rejected: the suggestion closes and the disabled route goes.
    sim.list_extra(json!({"id": "other:free", "object": "model"}));
    ok(&run(&["diagnosis", "run"]).await);
    assert!(ok(&run(&["models", "reject", "lab/other:free"]).await).contains("rejected"));
    assert!(
        store(dir)
            .await
            .get_route("lab/other:free")
            .await
            .unwrap()
            .is_none()
    );
    let again = run(&["models", "accept", "lab/other:free"]).await;
    assert!(!again.status.success(), "nothing left to accept");

    let providers = ok(&run(&["providers", "status"]).await);
    assert!(providers.contains("lab") && providers.contains("no: set GROQ_API_KEY"));
    assert!(ok(&run(&["quota", "show"]).await).contains("lab"));
    assert!(ok(&run(&["stats"]).await).contains("24h"));
    assert!(ok(&run(&["health", "reset", "lab/m1"]).await).contains("lab/m1"));
    assert!(
        !run(&["health", "reset"]).await.status.success(),
        "all routes needs --yes"
    );
    ok(&run(&["--yes", "health", "reset"]).await);
    assert!(ok(&run(&["config", "check"]).await).contains("provider lab: 1 key(s)"));
    let help = ok(&run(&["--help"]).await);
    for command in [
        "models",
        "health",
        "diagnosis",
        "providers",
        "quota",
        "stats",
        "config",
    ] {
        assert!(help.contains(command), "{command} missing from --help");
    }
}

async fn served_by(gateway: &ServiceProcess, http: &reqwest::Client) -> String {
    let response = http
        .post(gateway.url("/v1/chat/completions"))
        .json(&ask("auto", "hi"))
        .send()
        .await
        .unwrap();
    response
        .headers()
        .get("x-gateway-route")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn against_a_running_gateway_disable_stops_routing_and_health_reset_brings_a_cooling_route_back()
 {
    init_tls();
    let sim = Simulator::start().await;
    sim.model("m1");
    sim.model("m2");
    let dir = tempfile::tempdir().unwrap();
    let config = config(&sim);
    let gateway = config.start_process(GATEWAY, dir.path()).await;
    let http = reqwest::Client::new();
    assert_eq!(served_by(&gateway, &http).await, "lab/m1");

    ok(&adminctl(dir.path(), &config, &["models", "disable", "lab/m1"]).await);
    let started = Instant::now();
    while served_by(&gateway, &http).await != "lab/m2" {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "disable not honoured within 2 s"
        );
    }
    let before = sim.calls("m1");
    for _ in 0..10 {
        assert_eq!(served_by(&gateway, &http).await, "lab/m2");
    }
    assert_eq!(
        sim.calls("m1"),
        before,
        "a disabled route is never routed to"
    );
    ok(&adminctl(dir.path(), &config, &["models", "enable", "lab/m1"]).await);

    // m1 cools for an hour after a 429 …
    sim.model("m1").then(Behavior::rate_limited(Some("3600")));
    let started = Instant::now();
    while sim.calls("m1") == before {
        served_by(&gateway, &http).await;
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    assert_eq!(served_by(&gateway, &http).await, "lab/m2");
    // … until a health reset, after which it is tried (and serves) again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    ok(&adminctl(dir.path(), &config, &["health", "reset", "lab/m1"]).await);
    let started = Instant::now();
    while served_by(&gateway, &http).await != "lab/m1" {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "health reset not honoured"
        );
    }
    gateway.kill().await;
}

#[tokio::test]
async fn adminctl_and_the_admin_api_give_the_same_catalog_and_mutations_need_the_token() {
    init_tls();
    let sim = Simulator::start().await;
    let (cli_dir, api_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = config(&sim);
    ok(&adminctl(cli_dir.path(), &config, &["models", "rank", "lab/m2", "0"]).await);
    ok(&adminctl(cli_dir.path(), &config, &["models", "disable", "lab/m1"]).await);

    let gateway = config.start_process(GATEWAY, api_dir.path()).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value, token: Option<&str>| {
        let mut request = http.post(gateway.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let refused = post(
        "/v1/gateway/models/disable",
        json!({"route": "lab/m1"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin token")
    );
    let wrong = post(
        "/v1/gateway/models/disable",
        json!({"route": "lab/m1"}),
        Some("nope"),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    for (path, body) in [
        (
            "/v1/gateway/models/rank",
            json!({"route": "lab/m2", "rank": 0}),
        ),
        ("/v1/gateway/models/disable", json!({"route": "lab/m1"})),
    ] {
        let response = post(path, body, Some("admin-token-1")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let unknown = post(
        "/v1/gateway/models/enable",
        json!({"route": "lab/none"}),
        Some("admin-token-1"),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 404);

    let by_cli = store(cli_dir.path()).await.list_routes().await.unwrap();
    let by_api = store(api_dir.path()).await.list_routes().await.unwrap();
    assert_eq!(
        by_cli, by_api,
        "the same operation through either face gives the same catalog"
    );
    let listed: Value = http
        .get(gateway.url("/v1/gateway/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["routes"][0]["route_id"], "lab/m2");
    // Replacing the catalog: exactly these routes, in this order.
    let replace = http
        .put(gateway.url("/v1/gateway/models"))
        .bearer_auth("admin-token-1")
        .json(&json!({"routes": [
            {"provider": "lab", "model": "m3", "context_window": 4096, "tags": ["json"]},
            {"provider": "lab", "model": "m1", "enabled": false}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(replace.status(), 200);
    let routes = store(api_dir.path()).await.list_routes().await.unwrap();
    let ids: Vec<_> = routes
        .iter()
        .map(|r| (r.route_id.as_str(), r.enabled))
        .collect();
    assert_eq!(ids, vec![("lab/m3", true), ("lab/m1", false)]);
    let bad = http
        .put(gateway.url("/v1/gateway/models"))
        .bearer_auth("admin-token-1")
        .json(&json!({"routes": [{"provider": "nowhere", "model": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    gateway.kill().await;

    // Without a configured admin token the HTTP admin surface is read-only and says how to change that.
    let read_only = GatewayConfig::new()
        .toml(&format!(
            "[providers.lab]\nbase_url = \"{}\"",
            sim.base_url()
        ))
        .route("lab", "m1", 1)
        .start()
        .await;
    let response = read_only
        .http
        .post(read_only.url("/v1/gateway/health/reset"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FREEROUTER__AUTH__ADMIN_TOKEN")
    );
    assert_eq!(
        read_only.get("/v1/gateway/models").await.status(),
        200,
        "reads stay open"
    );
}

#[tokio::test]
async fn provider_keys_never_appear_in_output_responses_logs_metrics_or_the_database() {
    init_tls();
    let sim = Simulator::start().await;
    sim.model("m1").then(Behavior::error(
        401,
        "invalid_api_key",
        "Incorrect API key provided",
    ));
    sim.model("m2").then(Behavior::rate_limited(Some("1")));
    sim.list_extra(json!({"id": "x:free", "object": "model"}));
    let dir = tempfile::tempdir().unwrap();
    let config = config(&sim)
        .set("maintainer.first_run_delay_s", "0.1")
        .set("maintainer.diagnosis_interval_s", "1");
    let gateway = config.start_process(GATEWAY, dir.path()).await;
    let maintainer = config
        .start_service(MAINTAINER, dir.path(), "maintainer listening")
        .await;
    let http = reqwest::Client::new();
    let mut seen = String::new();
    for body in [
        ask("auto", "hi"),
        ask("auto", "hi"),
        json!({"stream": true, "messages": [{"role": "user", "content": "s"}]}),
    ] {
        let response = http
            .post(gateway.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        seen.push_str(&format!("{:?}", response.headers()));
        seen.push_str(&response.text().await.unwrap());
    }
    for path in [
        "/v1/models",
        "/metrics",
        "/ready",
        "/v1/gateway/models",
        "/v1/gateway/providers/status",
        "/v1/gateway/endpoint-diagnosis",
    ] {
        seen.push_str(
            &http
                .get(gateway.url(path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    seen.push_str(
        &reqwest::get(maintainer.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for args in [
        vec!["models", "list"],
        vec!["--json", "models", "list"],
        vec!["providers", "status"],
        vec!["--json", "providers", "status"],
        vec!["quota", "show"],
        vec!["--json", "quota", "show"],
        vec!["stats"],
        vec!["diagnosis", "show", "--all"],
        vec!["config", "check"],
    ] {
        let output = adminctl(dir.path(), &config, &args).await;
        seen.push_str(&String::from_utf8_lossy(&output.stdout));
        seen.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    seen.push_str(&gateway.log_lines_with("").join("\n"));
    seen.push_str(&maintainer.log_lines_with("").join("\n"));
    assert!(gateway.terminate().await.success() && maintainer.terminate().await.success());
    assert!(!seen.is_empty());
    assert!(
        !seen.contains(SECRET),
        "a provider key leaked into output, a response, a log or a metric"
    );
    // The database, its WAL included, byte for byte.
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("freerouter.db")
        {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "a provider key is stored in {}",
                path.display()
            );
        }
    }
    let _ = now_ms();
}

#[tokio::test]
async fn the_admin_api_runs_diagnosis_applies_suggestions_auto_ranks_resets_and_reports_providers()
{
    let sim = Simulator::start().await;
    sim.model("m1");
    sim.model("m2");
    sim.model("fresh:free");
    sim.list_extra(json!({"id": "fresh:free", "object": "model"}));
    let gateway = config(&sim).start().await;
    let http = &gateway.http;
    let admin = |path: &str| http.post(gateway.url(path)).bearer_auth("admin-token-1");

    let refreshed: Value = admin("/v1/gateway/endpoint-diagnosis/refresh")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["report"]["providers_checked"], json!(["lab"]));
    let listing: Value = http
        .get(gateway.url("/v1/gateway/endpoint-diagnosis"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let suggestion = listing["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["route_id"] == "lab/fresh:free")
        .expect("a suggestion for the new free model")
        .clone();
    let applied = admin("/v1/gateway/endpoint-diagnosis/apply")
        .json(&json!({"id": suggestion["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), 200);
    let again = admin("/v1/gateway/endpoint-diagnosis/apply")
        .json(&json!({"id": suggestion["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "only pending suggestions apply");
    let db = Store::open(&gateway.db_path, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        db.get_route("lab/fresh:free")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    // Traffic for auto-rank to measure: m1 fails, m2 serves.
    sim.model("m1")
        .always(Behavior::error(503, "overloaded", "busy"));
    for _ in 0..6 {
        gateway.chat(&ask("auto", "measure")).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let moved: Value = admin("/v1/gateway/models/auto-rank")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let routes = db.list_routes().await.unwrap();
    assert_eq!(
        routes[0].route_id, "lab/m2",
        "the failing route no longer leads: {moved}"
    );
    assert!(
        moved["moved"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["route_id"] == "lab/m1")
    );

    assert_eq!(
        admin("/v1/gateway/health/reset")
            .json(&json!({"route": "lab/m1"}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        admin("/v1/gateway/models/reset")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        db.list_routes().await.unwrap().len(),
        3,
        "no default routes here; declared and accepted routes kept"
    );

    let status: Value = http
        .get(gateway.url("/v1/gateway/providers/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lab = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "lab")
        .unwrap()
        .clone();
    assert_eq!(lab["usable"], true);
    assert_eq!(
        lab["keys"][0]["key_id"],
        freerouter::config::Secret::new(SECRET).fingerprint()
    );
}
