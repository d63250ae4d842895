//! The maintainer as a process against the gateway as a process, on one SQLite file, with the
//! simulator as the provider: diagnosis, auto-maintenance, discovery, the supervisor.

use freerouter::store::{Store, SuggestionKind, SuggestionStatus};
use freerouter_tests::harness::{GatewayConfig, ServiceProcess, ask, init_tls};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-under-test");
const MAINTAINER: &str = env!("CARGO_BIN_EXE_maintainer-under-test");
const ADMINCTL: &str = env!("CARGO_BIN_EXE_adminctl-under-test");

/// A config with the `lab` provider on `sim` and routes for `models`, diagnosis every second.
fn config(sim: &Simulator, models: &[&str]) -> GatewayConfig {
    let mut config = GatewayConfig::new()
        .set("catalog.reload_interval_ms", "1000")
        .set("maintainer.first_run_delay_s", "0.2")
        .set("maintainer.diagnosis_interval_s", "1")
        .set("maintainer.probe_timeout_ms", "2000")
        .toml(&format!(
            "[providers.lab]\nbase_url = \"{}\"\napi_keys = [\"sk-lab\"]",
            sim.base_url()
        ));
    for (i, model) in models.iter().enumerate() {
        config = config.route("lab", model, i as i64 + 1);
    }
    config
}

pub(crate) async fn store(dir: &Path) -> Store {
    Store::open(&dir.join("freerouter.db"), Duration::from_secs(5))
        .await
        .unwrap()
}

/// Successful diagnosis runs the maintainer has counted.
async fn diagnosis_runs(maintainer: &ServiceProcess) -> u64 {
    let text = reqwest::get(maintainer.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| {
            l.starts_with("freerouter_maintainer_runs_total")
                && l.contains("job=\"diagnosis\"")
                && l.contains("outcome=\"ok\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

pub(crate) async fn wait_for_runs(maintainer: &ServiceProcess, runs: u64) {
    let started = Instant::now();
    while diagnosis_runs(maintainer).await < runs {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the maintainer did not run diagnosis {runs} times"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn listed_models(gateway: &ServiceProcess) -> Vec<String> {
    let body: Value = reqwest::get(gateway.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_dead_model_is_removed_a_live_unlisted_one_kept_and_a_busy_probe_changes_nothing() {
    init_tls();
    let sim = Simulator::start().await;
    sim.model("listed");
    sim.model("gone").always(Behavior::error(
        404,
        "model_not_found",
        "The model `gone` does not exist",
    ));
    sim.model("hidden-alive");
    sim.model("hidden-busy")
        .always(Behavior::rate_limited(Some("30")));
    for hidden in ["gone", "hidden-alive", "hidden-busy"] {
        sim.unlist(hidden);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(&sim, &["listed", "gone", "hidden-alive", "hidden-busy"]);
    let gateway = config.start_process(GATEWAY, dir.path()).await;
    assert!(
        listed_models(&gateway)
            .await
            .contains(&"lab/gone".to_string())
    );
    let maintainer = config
        .start_service(MAINTAINER, dir.path(), "maintainer listening")
        .await;
    wait_for_runs(&maintainer, 1).await;
    let ran = Instant::now();
    loop {
        let models = listed_models(&gateway).await;
        if !models.contains(&"lab/gone".to_string()) {
            for kept in ["lab/listed", "lab/hidden-alive", "lab/hidden-busy"] {
                assert!(
                    models.contains(&kept.to_string()),
                    "{kept} was kept: {models:?}"
                );
            }
            break;
        }
        assert!(
            ran.elapsed() < Duration::from_secs(2),
            "the gateway still lists the dead route"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let applied = store(dir.path())
        .await
        .suggestions(Some(SuggestionStatus::Applied))
        .await
        .unwrap();
    let removal = applied
        .iter()
        .find(|s| s.route_id == "lab/gone")
        .expect("the removal is recorded");
    assert_eq!(removal.kind, SuggestionKind::RemoveRoute);
    assert_eq!(removal.decided_by.as_deref(), Some("auto"));
    assert_eq!(removal.evidence["probe"], "model_not_found");
    assert!(
        applied.iter().all(|s| s.route_id == "lab/gone"),
        "nothing else was applied: {applied:?}"
    );
    wait_for_runs(&maintainer, 3).await;
    let models = listed_models(&gateway).await;
    assert!(
        models.contains(&"lab/hidden-busy".to_string()),
        "a 429 probe never removes"
    );
    maintainer.kill().await;
    gateway.kill().await;
}

#[tokio::test]
async fn a_new_free_model_waits_disabled_until_adminctl_accepts_it_then_serves() {
    init_tls();
    let sim = Simulator::start().await;
    sim.model("old");
    sim.model("fresh:free").answer("fresh answer");
    sim.unlist("fresh:free");
    sim.list_extra(
        json!({"id": "fresh:free", "object": "model", "pricing": {"prompt": "0", "completion": "0"},
        "context_length": 32768, "supported_parameters": ["tools"]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config(&sim, &["old"]);
    let gateway = config.start_process(GATEWAY, dir.path()).await;
    let maintainer = config
        .start_service(MAINTAINER, dir.path(), "maintainer listening")
        .await;
    wait_for_runs(&maintainer, 1).await;
    let db = store(dir.path()).await;
    let pending = db
        .pending_suggestion(SuggestionKind::AddRoute, "lab/fresh:free")
        .await
        .unwrap();
    let pending = pending.expect("a pending add_route suggestion");
    assert_eq!(pending.evidence["listing"]["pricing"]["prompt"], "0");
    let route = db
        .get_route("lab/fresh:free")
        .await
        .unwrap()
        .expect("the proposed route");
    assert!(!route.enabled, "disabled until accepted");
    assert_eq!(route.context_window_tokens, 32768);
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let response = http
            .post(gateway.url("/v1/chat/completions"))
            .json(&ask("auto", "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-gateway-route"], "lab/old");
    }
    assert_eq!(sim.calls("fresh:free"), 0, "never routed to while pending");

    let db_path = dir.path().join("freerouter.db");
    let output = std::process::Command::new(ADMINCTL)
        .env_clear()
        .arg("--db")
        .arg(&db_path)
        .args(["models", "accept", "lab/fresh:free"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let accepted = Instant::now();
    loop {
        let response = http
            .post(gateway.url("/v1/chat/completions"))
            .header("x-freerouter-strict", "true")
            .json(&ask("lab/fresh:free", "hi"))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            assert_eq!(response.headers()["x-gateway-route"], "lab/fresh:free");
            break;
        }
        assert!(
            accepted.elapsed() < Duration::from_secs(2),
            "not routed to within 2 s of accepting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.calls("fresh:free"), 1);
    maintainer.kill().await;
    gateway.kill().await;
}

/// `config` with the supervisor's route: `judges/judge` on `judge`, tagged `web-search`.
pub(crate) fn with_judge(config: GatewayConfig, judge: &Simulator) -> GatewayConfig {
    config
        .toml(&format!(
            "[providers.judges]\nbase_url = \"{}\"\napi_keys = [\"sk-judge\"]",
            judge.base_url()
        ))
        .route_with(
            "judges",
            "judge",
            50,
            "context_window = 100000\ntags = [\"web-search\"]",
        )
}

/// Runs diagnosis twice with a supervisor answering `answer`; returns whether `lab/mystery` was
/// suggested and how often the supervisor was asked.
async fn supervisor_says(answer: &str) -> (bool, usize) {
    init_tls();
    let (lab, judge) = (Simulator::start().await, Simulator::start().await);
    lab.model("known");
    lab.list_extra(json!({"id": "mystery", "object": "model"}));
    judge.model("judge").answer(answer);
    let dir = tempfile::tempdir().unwrap();
    let config = with_judge(config(&lab, &["known"]), &judge);
    let maintainer = config
        .start_service(MAINTAINER, dir.path(), "maintainer listening")
        .await;
    wait_for_runs(&maintainer, 2).await;
    let suggested = store(dir.path())
        .await
        .pending_suggestion(SuggestionKind::AddRoute, "lab/mystery")
        .await
        .unwrap()
        .is_some();
    let asked = judge.calls("judge");
    maintainer.kill().await;
    (suggested, asked)
}

#[tokio::test]
async fn the_supervisor_allows_a_suggestion_only_on_free_with_high_confidence_and_is_asked_once() {
    let high = r#"{"free_chat_model": true, "confidence": "high", "reason": "free tier", "sources": ["https://lab.example/pricing"]}"#;
    let medium =
        r#"{"free_chat_model": true, "confidence": "medium", "reason": "probably", "sources": []}"#;
    let (suggested, asked) = supervisor_says(high).await;
    assert!(suggested, "true/high ⇒ a suggestion");
    assert_eq!(
        asked, 1,
        "the verdict is reused on the next run without asking again"
    );
    let (suggested, asked) = supervisor_says(medium).await;
    assert!(!suggested, "true/medium ⇒ none");
    assert_eq!(asked, 1);
    let (suggested, asked) = supervisor_says("I think it is probably free, yes.").await;
    assert!(!suggested, "free text ⇒ none (fails closed)");
    assert_eq!(asked, 1);
}

/// The three programs on one file for a minute: the gateway under load (requests, the quota ledger,
/// the request log), the maintainer running diagnosis and retention every second, adminctl toggling a
/// route. No "database is locked" reaches a client or a log, and every write is there at the end.
#[tokio::test]
async fn gateway_maintainer_and_adminctl_share_one_file_for_a_minute_without_locks_or_lost_writes()
{
    init_tls();
    let sim = Simulator::start().await;
    sim.set_recording(false);
    sim.model("main");
    sim.model("spare");
    sim.list_extra(json!({"id": "extra", "object": "model"}));
    let dir = tempfile::tempdir().unwrap();
    let config = config(&sim, &["main", "spare"])
        .set("maintainer.retention_interval_s", "1")
        .set("maintainer.first_run_delay_s", "0.1")
        .set("limits.per_client_burst", "0")
        .toml("[providers.lab.limits]\nrpm = 1000000\nrpd = 10000000");
    let gateway = config.start_process(GATEWAY, dir.path()).await;
    let maintainer = config
        .start_service(MAINTAINER, dir.path(), "maintainer listening")
        .await;
    let run_for = Duration::from_secs(60);
    let started = Instant::now();

    let mut clients = Vec::new();
    for _ in 0..6 {
        let url = gateway.url("/v1/chat/completions");
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut sent, mut failed) = (0u64, Vec::new());
            while started.elapsed() < run_for {
                let response = http
                    .post(&url)
                    .json(&ask("lab/main", "load"))
                    .send()
                    .await
                    .unwrap();
                sent += 1;
                if response.status() != 200 {
                    failed.push(response.text().await.unwrap_or_default());
                }
            }
            (sent, failed)
        }));
    }
    let db_path = dir.path().join("freerouter.db");
    let admin = tokio::task::spawn_blocking(move || {
        let (mut toggles, mut errors) = (0u64, Vec::new());
        while started.elapsed() < run_for {
            let action = if toggles % 2 == 0 {
                "disable"
            } else {
                "enable"
            };
            let output = std::process::Command::new(ADMINCTL)
                .env_clear()
                .arg("--db")
                .arg(&db_path)
                .args(["models", action, "lab/spare"])
                .output()
                .unwrap();
            if output.status.success() {
                toggles += 1;
            } else {
                errors.push(String::from_utf8_lossy(&output.stderr).to_string());
            }
        }
        (toggles, errors)
    });

    let (mut requests, mut failures) = (0u64, Vec::new());
    for client in clients {
        let (sent, failed) = client.await.unwrap();
        requests += sent;
        failures.extend(failed);
    }
    let (toggles, admin_errors) = admin.await.unwrap();
    let diagnosis = diagnosis_runs(&maintainer).await;
    let gateway_locked = gateway.log_lines_with("locked");
    let maintainer_locked = maintainer.log_lines_with("locked");
    let maintainer_errors = maintainer.log_lines_with("\"outcome\":\"error\"");
    assert!(gateway.terminate().await.success());
    assert!(maintainer.terminate().await.success());

    eprintln!(
        "{requests} requests, {toggles} adminctl writes, {diagnosis} diagnosis runs in a minute"
    );
    assert!(
        failures.is_empty(),
        "clients saw errors: {:?}",
        &failures[..failures.len().min(3)]
    );
    assert!(
        admin_errors.is_empty(),
        "adminctl failed: {:?}",
        &admin_errors[..admin_errors.len().min(3)]
    );
    assert!(
        gateway_locked.is_empty() && maintainer_locked.is_empty(),
        "{gateway_locked:?} {maintainer_locked:?}"
    );
    assert!(maintainer_errors.is_empty(), "{maintainer_errors:?}");
    assert!(
        requests > 500 && toggles > 50 && diagnosis > 20,
        "everyone was busy"
    );
    let db = store(dir.path()).await;
    assert_eq!(
        db.count_request_logs().await.unwrap(),
        requests as i64,
        "every request is in the log"
    );
    let spare = db.get_route("lab/spare").await.unwrap().unwrap();
    assert_eq!(
        spare.enabled,
        toggles % 2 == 0,
        "the last adminctl write stands"
    );
    assert!(
        db.pending_suggestion(SuggestionKind::AddRoute, "lab/extra")
            .await
            .unwrap()
            .is_none(),
        "no price and no high-confidence verdict ⇒ no suggestion"
    );
}

/// The jobs called directly (`run_once` style) on a real file, with the simulator as the provider.
async fn maintenance_for(sim: &Simulator, dir: &Path) -> freerouter::maintenance::Maintenance {
    init_tls();
    let source = freerouter::config::ConfigSource::from_toml(format!(
        "[providers.lab]\nbase_url = \"{}\"\napi_keys = [\"sk-lab\"]",
        sim.base_url()
    ));
    let settings = freerouter::config::Settings::load(&source).unwrap();
    freerouter::maintenance::Maintenance {
        store: store(dir).await,
        providers: freerouter::catalog::resolve_providers(&settings, &source),
        http: freerouter::providers::http_client(Duration::from_secs(2)).unwrap(),
        settings: settings.maintainer,
    }
}

#[tokio::test]
async fn a_refused_key_that_works_again_is_restored_for_every_gateway() {
    let sim = Simulator::start().await;
    sim.model("m");
    let dir = tempfile::tempdir().unwrap();
    let maintenance = maintenance_for(&sim, dir.path()).await;
    let key_id = freerouter::config::Secret::new("sk-lab").fingerprint();
    let refused = freerouter::health::HealthChange::KeyInvalid(freerouter::health::InvalidKey {
        provider: "lab".into(),
        key_id: key_id.clone(),
        since_ms: 1,
        status: 401,
        retry_at_ms: i64::MAX,
        strikes: 1,
    });
    maintenance
        .store
        .apply_health_changes(&[refused], 1)
        .await
        .unwrap();
    let before = maintenance.store.versions().await.unwrap().health;
    assert_eq!(maintenance.recheck_keys().await.unwrap(), 1);
    assert!(maintenance.store.invalid_keys().await.unwrap().is_empty());
    assert!(
        maintenance.store.versions().await.unwrap().health > before,
        "gateways reload health"
    );
}

#[tokio::test]
async fn retention_trims_old_request_log_rows_and_keeps_recent_ones() {
    let sim = Simulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let maintenance = maintenance_for(&sim, dir.path()).await;
    let now = freerouter::time::now_ms();
    let row = |age_days: i64| freerouter::store::RequestLogRow {
        request_id: format!("req_{age_days}"),
        at_ms: now - age_days * 86_400_000,
        endpoint: "chat_completions".into(),
        requested_model: "auto".into(),
        route_id: None,
        provider: None,
        attempts: 1,
        status: 200,
        outcome: "ok".into(),
        error_class: None,
        latency_ms: 5,
        ttft_ms: None,
        tokens_in: None,
        tokens_out: None,
        stream: false,
        trail: String::new(),
    };
    let rows: Vec<_> = [1, 10, 29, 31, 45].into_iter().map(row).collect();
    maintenance.store.insert_request_logs(&rows).await.unwrap();
    let trimmed = maintenance.retain(now).await.unwrap();
    assert_eq!(trimmed.request_log, 2, "older than 30 days");
    assert_eq!(maintenance.store.count_request_logs().await.unwrap(), 3);
}
