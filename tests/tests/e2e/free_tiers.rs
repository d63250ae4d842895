//! Free tiers as they really answer (issue 13 item 1): each built-in provider's adapter against the
//! simulator speaking that provider's own form of "quota spent" (`Simulator::speak`, the
//! `Behavior::gemini_exhausted` and `openrouter_free_per_day` scripts), and how long the key then
//! rests: a minute, the provider's day, the month, or — for a model outside the key's tier — until
//! a health reset.
//!
//! Day windows are guarded like `quota.rs`: a run in the last seconds of a UTC day waits it out.

use freerouter::config::Secret;
use freerouter::time::{EpochMs, now_ms};
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, header};
use freerouter_tests::simulator::{Behavior, Dialect, KeyLimits, Simulator};
use std::time::Duration;

const DAY_MS: EpochMs = 86_400_000;
const MINUTE_MS: EpochMs = 60_000;

/// `[providers.NAME]` pointing a built-in at `base_url` with one key.
fn builtin(name: &str, base_url: &str, key: &str) -> String {
    format!("[providers.{name}]\nbase_url = \"{base_url}\"\napi_keys = [\"{key}\"]")
}

/// When the gateway's health board lets `key` on `route_id` again (a rest on every route counts).
fn cooling_until(
    gateway: &TestGateway,
    provider: &str,
    key: &str,
    route_id: &str,
) -> Option<EpochMs> {
    gateway.gateway.state.engine.health.key_cooling_until(
        provider,
        &Secret::new(key).fingerprint(),
        route_id,
        now_ms(),
    )
}

/// The reason the key rests on `route_id` (or `*`), as `/status` shows it.
fn resting_reason(gateway: &TestGateway, route_id: &str) -> Option<String> {
    gateway
        .gateway
        .state
        .engine
        .health
        .key_cooldowns()
        .into_iter()
        .find(|k| k.route_id == route_id && k.until_ms > now_ms())
        .map(|k| k.reason)
}

/// The next time a day resetting `reset_minute` minutes after UTC midnight turns.
fn next_day_reset(now: EpochMs, reset_minute: i64) -> EpochMs {
    let offset = reset_minute * MINUTE_MS;
    ((now - offset).div_euclid(DAY_MS) + 1) * DAY_MS + offset
}

/// Waits out the last seconds of a UTC day, so a test's requests share one day window.
async fn clear_of_utc_midnight() {
    let now = now_ms();
    let left = next_day_reset(now, 0) - now;
    if left < 15_000 {
        tokio::time::sleep(Duration::from_millis(left as u64 + 100)).await;
    }
}

/// A fallback provider of the user's own, on its own simulator.
async fn fallback() -> (Simulator, String) {
    let sim = Simulator::start().await;
    sim.model("backup");
    let toml = format!(
        "[providers.lab]\nbase_url = \"{}\"\napi_keys = [\"lab-key\"]",
        sim.base_url()
    );
    (sim, toml)
}

async fn served_by(gateway: &TestGateway, text: &str) -> String {
    let response = gateway.chat(&ask("auto", text)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    header(&response, "x-gateway-route")
}

#[tokio::test]
async fn gemini_s_per_day_refusal_rests_the_key_on_that_model_until_gemini_s_day_turns() {
    clear_of_utc_midnight().await;
    let sim = Simulator::start().await;
    sim.speak(Dialect::Gemini);
    sim.model("gemini-2.5-flash").limit(KeyLimits {
        rpd: Some(1),
        ..KeyLimits::default()
    });
    sim.model("gemini-2.5-flash-lite");
    let gateway = GatewayConfig::new()
        .toml(&builtin("gemini", &sim.url("/v1beta/openai"), "gem-key"))
        .route("gemini", "gemini-2.5-flash", 1)
        .route("gemini", "gemini-2.5-flash-lite", 2)
        .start()
        .await;
    assert_eq!(served_by(&gateway, "one").await, "gemini/gemini-2.5-flash");
    let before = now_ms();
    assert_eq!(
        served_by(&gateway, "two").await,
        "gemini/gemini-2.5-flash-lite",
        "the spent model's day moves the request to the next model, same key"
    );
    let until = cooling_until(&gateway, "gemini", "gem-key", "gemini/gemini-2.5-flash")
        .expect("the key rests on the spent model");
    // The built-in catalog's Gemini day turns at 08:00 UTC; the 40-odd-second retryDelay that
    // rides along with a PerDay violation is not the wait.
    assert_eq!(until, next_day_reset(before, 8 * 60));
    assert_eq!(
        cooling_until(
            &gateway,
            "gemini",
            "gem-key",
            "gemini/gemini-2.5-flash-lite"
        ),
        None,
        "quotas are per model: the other model keeps the key"
    );
    assert_eq!(
        resting_reason(&gateway, "gemini/gemini-2.5-flash").as_deref(),
        Some("daily_quota")
    );
    assert_eq!(
        served_by(&gateway, "three").await,
        "gemini/gemini-2.5-flash-lite"
    );
    assert_eq!(
        sim.calls("gemini-2.5-flash"),
        2,
        "the resting model is not called again"
    );
}

#[tokio::test]
async fn gemini_s_per_minute_refusal_rests_the_key_for_its_retry_delay() {
    let sim = Simulator::start().await;
    sim.model("gemini-2.5-flash")
        .then(Behavior::gemini_exhausted(
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            5,
            "37s",
        ));
    sim.model("gemini-2.5-flash-lite");
    let gateway = GatewayConfig::new()
        .toml(&builtin("gemini", &sim.url("/v1beta/openai"), "gem-key"))
        .route("gemini", "gemini-2.5-flash", 1)
        .route("gemini", "gemini-2.5-flash-lite", 2)
        .start()
        .await;
    let before = now_ms();
    assert_eq!(
        served_by(&gateway, "hi").await,
        "gemini/gemini-2.5-flash-lite"
    );
    let after = now_ms();
    let until = cooling_until(&gateway, "gemini", "gem-key", "gemini/gemini-2.5-flash")
        .expect("resting for the delay");
    assert!(
        (before + 37_000..=after + 37_000).contains(&until),
        "rests {} ms, expected the 37 s retryDelay",
        until - before
    );
}

#[tokio::test]
async fn a_gemini_model_outside_the_key_s_tier_stays_off_for_that_key_until_a_health_reset() {
    let sim = Simulator::start().await;
    sim.model("gemini-2.5-pro").then(Behavior::gemini_exhausted(
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        0,
        "20s",
    ));
    sim.model("gemini-2.5-flash");
    let gateway = GatewayConfig::new()
        .set("auth.admin_token", "admin-token-1")
        .toml(&builtin("gemini", &sim.url("/v1beta/openai"), "gem-key"))
        .route("gemini", "gemini-2.5-pro", 1)
        .route("gemini", "gemini-2.5-flash", 2)
        .start()
        .await;
    let before = now_ms();
    assert_eq!(served_by(&gateway, "hi").await, "gemini/gemini-2.5-flash");
    let until = cooling_until(&gateway, "gemini", "gem-key", "gemini/gemini-2.5-pro")
        .expect("the route is off for this key");
    assert!(
        until - before > 20 * 3_600_000,
        "not the 20 s delay, not until the day turns: the longest rest ({} ms)",
        until - before
    );
    assert_eq!(
        resting_reason(&gateway, "gemini/gemini-2.5-pro").as_deref(),
        Some("not_in_tier")
    );
    // The console reads the store, which the writer brings up to date in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gateway
        .get("/status")
        .await
        .text()
        .await
        .unwrap()
        .contains("not_in_tier")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the console shows why"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        served_by(&gateway, "again").await,
        "gemini/gemini-2.5-flash"
    );
    assert_eq!(sim.calls("gemini-2.5-pro"), 1);

    // A health reset (the owner upgraded the project, say) brings it back.
    let reset = gateway
        .http
        .post(gateway.url("/v1/gateway/health/reset"))
        .bearer_auth("admin-token-1")
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200, "{}", reset.text().await.unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cooling_until(&gateway, "gemini", "gem-key", "gemini/gemini-2.5-pro").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reset reaches the gateway"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        served_by(&gateway, "after the reset").await,
        "gemini/gemini-2.5-pro"
    );
}

#[tokio::test]
async fn openrouter_s_last_free_request_of_the_day_rests_the_key_on_every_free_model_until_its_reset()
 {
    clear_of_utc_midnight().await;
    let sim = Simulator::start().await;
    sim.speak(Dialect::OpenRouter);
    sim.limit_key(
        "or-key",
        KeyLimits {
            rpd: Some(1),
            ..KeyLimits::default()
        },
    );
    sim.model("qwen/qwen3-coder:free");
    sim.model("openai/gpt-oss-20b:free");
    let (backup, lab) = fallback().await;
    let gateway = GatewayConfig::new()
        .toml(&builtin("openrouter", &sim.base_url(), "or-key"))
        .toml(&lab)
        .route("openrouter", "qwen/qwen3-coder:free", 1)
        .route("openrouter", "openai/gpt-oss-20b:free", 2)
        .route("lab", "backup", 3)
        .start()
        .await;
    let before = now_ms();
    // The answer says `X-RateLimit-Remaining: 0` for the account's one free pool.
    assert_eq!(
        served_by(&gateway, "one").await,
        "openrouter/qwen/qwen3-coder:free"
    );
    let until = cooling_until(
        &gateway,
        "openrouter",
        "or-key",
        "openrouter/openai/gpt-oss-20b:free",
    )
    .expect("the key rests on every route, not only the one that answered");
    // X-RateLimit-Reset is absolute; the wait is measured from when the answer came.
    assert!(
        (until - next_day_reset(before, 0)).abs() < 1_000,
        "rests until {until}, X-RateLimit-Reset said {}",
        next_day_reset(before, 0)
    );
    let response = gateway.chat(&ask("auto", "two")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-gateway-route"), "lab/backup");
    assert_eq!(
        header(&response, "x-gateway-attempts"),
        "1",
        "no call that would be refused"
    );
    assert_eq!(sim.total_calls(), 1);
    assert_eq!(backup.calls("backup"), 1);
}

#[tokio::test]
async fn openrouter_s_free_models_per_day_429_rests_the_key_on_every_free_model() {
    let sim = Simulator::start().await;
    let reset = now_ms() + 3 * 3_600_000;
    sim.model("qwen/qwen3-coder:free")
        .then(Behavior::openrouter_free_per_day(reset as u64, true));
    sim.model("openai/gpt-oss-20b:free");
    let (_backup, lab) = fallback().await;
    let gateway = GatewayConfig::new()
        .toml(&builtin("openrouter", &sim.base_url(), "or-key"))
        .toml(&lab)
        .route("openrouter", "qwen/qwen3-coder:free", 1)
        .route("openrouter", "openai/gpt-oss-20b:free", 2)
        .route("lab", "backup", 3)
        .start()
        .await;
    let response = gateway.chat(&ask("auto", "hi")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-gateway-trail"),
        "openrouter/qwen/qwen3-coder:free:429,lab/backup:ok",
        "the other free model shares the spent pool: not tried"
    );
    let until = cooling_until(
        &gateway,
        "openrouter",
        "or-key",
        "openrouter/openai/gpt-oss-20b:free",
    )
    .expect("the key rests on every route");
    assert!(
        (until - reset).abs() < 1_000,
        "rests until {until}, the header said {reset}"
    );
    assert_eq!(
        resting_reason(&gateway, "*").as_deref(),
        Some("daily_quota")
    );
}

#[tokio::test]
async fn openrouter_s_metadata_copy_of_the_reset_is_read_when_the_headers_are_absent() {
    let sim = Simulator::start().await;
    let reset = now_ms() + 5 * 3_600_000;
    sim.model("qwen/qwen3-coder:free")
        .then(Behavior::openrouter_free_per_day(reset as u64, false));
    let (_backup, lab) = fallback().await;
    let gateway = GatewayConfig::new()
        .toml(&builtin("openrouter", &sim.base_url(), "or-key"))
        .toml(&lab)
        .route("openrouter", "qwen/qwen3-coder:free", 1)
        .route("lab", "backup", 2)
        .start()
        .await;
    assert_eq!(served_by(&gateway, "hi").await, "lab/backup");
    let until = cooling_until(&gateway, "openrouter", "or-key", "*").expect("the key rests");
    assert!(
        (until - reset).abs() < 1_000,
        "rests until {until}, the metadata said {reset}"
    );
}

/// Cerebras (its own answers, its key limited as given) first, a lab route behind it.
async fn cerebras_with_a_fallback(limits: KeyLimits) -> (Simulator, Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.speak(Dialect::Cerebras);
    sim.limit_key("cb-key", limits);
    sim.model("gpt-oss-120b");
    let (backup, lab) = fallback().await;
    let gateway = GatewayConfig::new()
        .toml(&builtin("cerebras", &sim.url("/v1"), "cb-key"))
        .toml(&lab)
        .route("cerebras", "gpt-oss-120b", 1)
        .route("lab", "backup", 2)
        .start()
        .await;
    (sim, backup, gateway)
}

#[tokio::test]
async fn cerebras_spent_minute_beside_a_day_with_room_rests_the_key_for_the_minute_only() {
    let (sim, _backup, gateway) = cerebras_with_a_fallback(KeyLimits {
        rpm: Some(1),
        rpd: Some(14_400),
        ..KeyLimits::default()
    })
    .await;
    // The answer says 0 left this minute, 14,399 today: two windows, two resets.
    assert_eq!(served_by(&gateway, "one").await, "cerebras/gpt-oss-120b");
    // The rest runs from the answer, which came before now (a loaded machine answers late).
    let answered_by = now_ms();
    let until = cooling_until(&gateway, "cerebras", "cb-key", "cerebras/gpt-oss-120b")
        .expect("the spent minute rests the key");
    assert!(
        until <= answered_by + MINUTE_MS + 1_000,
        "rests {} ms past the answer: the minute's reset, not the day's",
        until - answered_by
    );
    assert_eq!(served_by(&gateway, "two").await, "lab/backup");
    assert_eq!(sim.calls("gpt-oss-120b"), 1);
}

#[tokio::test]
async fn a_cerebras_token_minute_refusal_without_retry_after_rests_for_the_minute() {
    let (_sim, _backup, gateway) = cerebras_with_a_fallback(KeyLimits {
        tpm: Some(60),
        rpd: Some(14_400),
        ..KeyLimits::default()
    })
    .await;
    let long = "word ".repeat(300);
    assert_eq!(served_by(&gateway, &long).await, "lab/backup");
    // The rest runs from the refusal, which came before now (a loaded machine answers late).
    let answered_by = now_ms();
    let until = cooling_until(&gateway, "cerebras", "cb-key", "cerebras/gpt-oss-120b")
        .expect("the refused key rests");
    assert!(
        until <= answered_by + MINUTE_MS + 1_000,
        "rests {} ms past the refusal: the tokens-minute reset, not the requests-day one",
        until - answered_by
    );
    assert_eq!(
        resting_reason(&gateway, "cerebras/gpt-oss-120b").as_deref(),
        Some("minute_rate")
    );
}

#[tokio::test]
async fn cohere_s_spent_trial_month_rests_the_key_until_the_month_turns() {
    let sim = Simulator::start().await;
    sim.model("command-a-03-2025").then(Behavior::Status {
        status: 429,
        body: serde_json::json!({"id": "c1", "message": "You are using a Trial key, which is limited to 1000 API calls / month. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'."}),
        headers: Vec::new(),
    });
    let (_backup, lab) = fallback().await;
    let gateway = GatewayConfig::new()
        .toml(&builtin("cohere", &sim.url("/compatibility/v1"), "co-key"))
        .toml(&lab)
        .route("cohere", "command-a-03-2025", 1)
        .route("lab", "backup", 2)
        .start()
        .await;
    let before = now_ms();
    assert_eq!(served_by(&gateway, "hi").await, "lab/backup");
    let until = cooling_until(&gateway, "cohere", "co-key", "*").expect("the whole key rests");
    // The health board caps every rest (routing.max_cooldown_s, 26 h by default): within a day
    // of the month's end it is the month, else the cap.
    let month = freerouter::quota::window::next_month_start(before);
    let cap = before + 26 * 3_600_000;
    assert!(
        (until - month.min(cap)).abs() < 2_000,
        "rests until {until}, expected {}",
        month.min(cap)
    );
    assert_eq!(
        resting_reason(&gateway, "*").as_deref(),
        Some("monthly_quota")
    );
}

#[tokio::test]
async fn cloudflare_s_error_4006_under_a_400_is_a_spent_day_not_the_client_s_fault() {
    let sim = Simulator::start().await;
    sim.model("@cf/openai/gpt-oss-120b").then(Behavior::Status {
        status: 400,
        body: serde_json::json!({"result": null, "success": false, "errors": [{"code": 4006, "message": "4006: you have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage."}], "messages": []}),
        headers: Vec::new(),
    });
    let (_backup, lab) = fallback().await;
    let gateway = GatewayConfig::new()
        .toml(&builtin(
            "cloudflare",
            &sim.url("/client/v4/accounts/{account_id}/ai/v1"),
            "cf-token",
        ))
        .env_var("CLOUDFLARE_ACCOUNT_ID", "acc123")
        .toml(&lab)
        .route("cloudflare", "@cf/openai/gpt-oss-120b", 1)
        .route("lab", "backup", 2)
        .start()
        .await;
    clear_of_utc_midnight().await;
    let before = now_ms();
    assert_eq!(served_by(&gateway, "hi").await, "lab/backup");
    assert_eq!(
        cooling_until(&gateway, "cloudflare", "cf-token", "*"),
        Some(next_day_reset(before, 0)),
        "the account's neurons come back at 00:00 UTC"
    );
}

/// The maintainer's key recheck, on the store in `dir`, for a Gemini provider at `sim`.
async fn maintenance_for(
    sim: &Simulator,
    dir: &std::path::Path,
) -> freerouter::maintenance::Maintenance {
    freerouter_tests::harness::init_tls();
    let source = freerouter::config::ConfigSource::from_toml(builtin(
        "gemini",
        &sim.url("/v1beta/openai"),
        "gem-key",
    ));
    let settings = freerouter::config::Settings::load(&source).unwrap();
    let store = freerouter::store::Store::open(&dir.join("freerouter.db"), Duration::from_secs(5))
        .await
        .unwrap();
    freerouter::maintenance::Maintenance {
        store,
        providers: freerouter::catalog::resolve_providers(&settings, &source),
        http: freerouter::providers::http_client(Duration::from_secs(2)).unwrap(),
        settings: settings.maintainer,
    }
}

#[tokio::test]
async fn the_maintainer_lifts_a_not_in_tier_rest_once_the_model_answers_that_key() {
    let sim = Simulator::start().await;
    sim.model("gemini-2.5-pro");
    sim.model("gemini-3-pro").always(Behavior::gemini_exhausted(
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        0,
        "20s",
    ));
    let dir = tempfile::tempdir().unwrap();
    let maintenance = maintenance_for(&sim, dir.path()).await;
    let key_id = Secret::new("gem-key").fingerprint();
    let mut changes = Vec::new();
    for model in ["gemini-2.5-pro", "gemini-3-pro"] {
        let seed = freerouter::catalog::RouteSeed {
            provider: "gemini".into(),
            model: model.into(),
            rank: Some(1),
            ..freerouter::catalog::RouteSeed::default()
        };
        let route = seed.into_route(freerouter::catalog::Origin::Manual, true, 1);
        maintenance.store.upsert_route(&route, 1).await.unwrap();
        changes.push(freerouter::health::HealthChange::Key(
            freerouter::health::KeyCooldown {
                provider: "gemini".into(),
                key_id: key_id.clone(),
                route_id: route.route_id.clone(),
                until_ms: now_ms() + 20 * 3_600_000,
                reason: "not_in_tier".into(),
                strikes: 0,
            },
        ));
    }
    maintenance
        .store
        .apply_health_changes(&changes, 1)
        .await
        .unwrap();
    let before = maintenance.store.versions().await.unwrap().health;
    assert_eq!(maintenance.recheck_tiers().await.unwrap(), 1);
    let left: Vec<String> = maintenance
        .store
        .load_health(now_ms())
        .await
        .unwrap()
        .keys
        .into_iter()
        .map(|k| k.route_id)
        .collect();
    assert_eq!(
        left,
        vec!["gemini/gemini-3-pro"],
        "the one still outside the tier stays off"
    );
    assert!(
        maintenance.store.versions().await.unwrap().health > before,
        "gateways reload health"
    );
}
