//! The maintainer's discovery uses the built-in catalog's 2026 facts (issue 13 item 4): a listed
//! model the catalog ships as a free default is proposed with the catalog's limits, rank and tags;
//! a default route whose model is off the free tier is retired though the provider still lists it;
//! a listed model off the free tier is never proposed, whatever the supervisor says; a route the
//! user declared is theirs. A provider on trial credit says so in adminctl and the console, unless
//! the owner's config says otherwise.

use super::capacity::adminctl;
use super::maintainer::{store, wait_for_runs, with_judge};
use freerouter::catalog::builtin::registry;
use freerouter::catalog::{Origin, RouteSeed};
use freerouter::store::{SuggestionKind, SuggestionStatus};
use freerouter::time::now_ms;
use freerouter_tests::harness::{GatewayConfig, ask, init_tls};
use freerouter_tests::simulator::Simulator;

const MAINTAINER: &str = env!("CARGO_BIN_EXE_maintainer-under-test");

/// SambaNova (a trial credit since 2026) on `sim`, with `extra` under its table.
fn sambanova(sim: &Simulator, extra: &str) -> GatewayConfig {
    GatewayConfig::new()
        .toml(&format!(
            "[providers.sambanova]\nbase_url = \"{}\"\napi_keys = [\"sn-key\"]\n{extra}",
            sim.base_url()
        ))
        .route("sambanova", "DeepSeek-V3.2", 1)
}

#[tokio::test]
async fn a_trial_credit_is_shown_by_adminctl_and_the_console_unless_the_owner_says_otherwise() {
    let sim = Simulator::start().await;
    sim.model("DeepSeek-V3.2");
    let dir = tempfile::tempdir().unwrap();
    let shipped = sambanova(&sim, "");
    assert!(
        adminctl(&shipped, dir.path(), &["providers", "status"])
            .await
            .contains("sambanova (trial credit)")
    );
    let gateway = shipped.start().await;
    assert_eq!(gateway.chat(&ask("auto", "hi")).await.status(), 200);
    let status = reqwest::get(gateway.url("/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        status.contains(r#"sambanova <span class="badge warn">trial credit</span>"#),
        "{status}"
    );

    let owned = sambanova(&sim, "trial = false");
    let listed = adminctl(&owned, dir.path(), &["providers", "status"]).await;
    assert!(
        listed.contains("sambanova") && !listed.contains("trial credit"),
        "{listed}"
    );
}

#[tokio::test]
async fn the_maintainer_proposes_the_catalogs_2026_models_and_retires_the_ones_off_the_free_tier() {
    init_tls();
    let (gemini, judge) = (Simulator::start().await, Simulator::start().await);
    for model in [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-pro-preview-06-05",
        "gemini-3.5-flash",
        "gemini-2.0-flash-lite",
        "gemini-exp-mystery",
    ] {
        gemini.model(model);
    }
    judge.model("judge").answer(
        r#"{"free_chat_model": true, "confidence": "high", "reason": "free tier", "sources": ["https://ai.google.dev/pricing"]}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    // A database an older catalog seeded: 2.5 Flash and 2.5 Pro as defaults.
    let db = store(dir.path()).await;
    for (model, rank) in [("gemini-2.5-flash", 10), ("gemini-2.5-pro", 20)] {
        let seed = RouteSeed {
            provider: "gemini".into(),
            model: model.into(),
            context_window: Some(1_048_576),
            ..RouteSeed::default()
        };
        db.upsert_route(&seed.into_route(Origin::Default, true, rank), now_ms())
            .await
            .unwrap();
    }
    let config = GatewayConfig::new()
        .set("maintainer.first_run_delay_s", "0.2")
        .set("maintainer.diagnosis_interval_s", "1")
        .set("maintainer.probe_timeout_ms", "2000")
        .toml(&format!(
            "[providers.gemini]\nbase_url = \"{}\"\napi_keys = [\"gem-key\"]",
            gemini.url("/v1beta/openai"),
        ))
        // The user's own route to a model off the free tier (a paid key): kept.
        .route("gemini", "gemini-2.5-pro-preview-06-05", 30);
    let config = with_judge(config, &judge);
    let maintainer = config
        .start_service(MAINTAINER, dir.path(), "maintainer listening")
        .await;
    wait_for_runs(&maintainer, 2).await;

    let proposed = db
        .pending_suggestion(SuggestionKind::AddRoute, "gemini/gemini-3.5-flash")
        .await
        .unwrap()
        .expect("the catalog's 2026 model is proposed");
    assert_eq!(
        proposed.evidence["free_because"],
        "the built-in catalog lists it on the free tier"
    );
    let route = db
        .get_route("gemini/gemini-3.5-flash")
        .await
        .unwrap()
        .expect("the proposed route");
    let shipped = registry()
        .default_route("gemini", "gemini-3.5-flash")
        .unwrap();
    assert!(!route.enabled, "disabled until accepted");
    assert_eq!(route.origin, Origin::Discovered);
    assert_eq!(
        (route.limits.rpm, route.limits.rpd),
        (Some(5), Some(20)),
        "the catalog's free-tier limits, not the listing's nothing"
    );
    assert_eq!(route.rank, shipped.rank);
    assert_eq!(route.tags, shipped.tags);
    assert_eq!(route.context_window_tokens, 1_048_576);

    let applied = db
        .suggestions(Some(SuggestionStatus::Applied))
        .await
        .unwrap();
    let retired = applied
        .iter()
        .find(|s| s.route_id == "gemini/gemini-2.5-pro")
        .expect("the default off the free tier is retired");
    assert_eq!(retired.kind, SuggestionKind::RemoveRoute);
    assert_eq!(retired.evidence["listed"], true, "though still listed");
    assert!(
        retired.evidence["off_free_tier"]
            .as_str()
            .unwrap()
            .contains("April 2026"),
        "{}",
        retired.evidence
    );
    assert!(
        db.get_route("gemini/gemini-2.5-pro")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        applied
            .iter()
            .all(|s| s.route_id == "gemini/gemini-2.5-pro"),
        "nothing else was applied: {applied:?}"
    );
    assert!(
        db.get_route("gemini/gemini-2.5-pro-preview-06-05")
            .await
            .unwrap()
            .is_some_and(|r| r.enabled),
        "the user's declared route is theirs"
    );
    assert!(
        db.get_route("gemini/gemini-2.5-flash")
            .await
            .unwrap()
            .is_some_and(|r| r.enabled)
    );

    let every = db.suggestions(None).await.unwrap();
    assert!(
        !every
            .iter()
            .any(|s| s.route_id == "gemini/gemini-2.0-flash-lite"),
        "a listed model off the free tier is never proposed: {every:?}"
    );
    assert!(
        db.pending_suggestion(SuggestionKind::AddRoute, "gemini/gemini-exp-mystery")
            .await
            .unwrap()
            .is_some(),
        "a model the catalog does not know still goes to the supervisor"
    );
    assert_eq!(
        judge.calls("judge"),
        1,
        "the supervisor is asked only about the model the catalog does not know"
    );
    maintainer.kill().await;
}
