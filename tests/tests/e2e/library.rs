//! The embeddable router (`freerouter::Router`) against the simulator, no HTTP server of ours:
//! ranking, fallback on a 429, streams (rescued when cut), embeddings within one model, typed
//! refusals, one SQLite file shared with a gateway (quota and the request log), and the
//! `shared/examples/ask.rs` program run as a process.

use freerouter::catalog::load_settings;
use freerouter::{Request, Router, RouterError};
use freerouter_tests::harness::{GatewayConfig, ask, header, init_tls};
use freerouter_tests::simulator::{Behavior, DEFAULT_DIMENSIONS, Simulator, embedding_of};
use futures::StreamExt;
use serde_json::json;
use std::path::Path;

/// `shared/examples/ask.rs`, built by this package as `library-example-under-test`.
const EXAMPLE: &str = env!("CARGO_BIN_EXE_library-example-under-test");
const ANSWER: &str = "The quick brown fox jumps over the lazy dog, twice over.";

/// A router on `db` configured as a gateway would be by `config`.
async fn router(config: &GatewayConfig, db: &Path) -> Router {
    init_tls();
    let source = config.source(db);
    let settings = load_settings(&source).expect("valid settings");
    Router::from_settings(settings, source)
        .await
        .expect("the router starts")
}

/// Two ranked routes on two simulators, each answering with its own text.
async fn two_routes() -> (Simulator, Simulator, GatewayConfig) {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").answer(ANSWER);
    b.model("model-b").answer(ANSWER);
    let config = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route("pa", "model-a", 1)
        .route("pb", "model-b", 2);
    (a, b, config)
}

#[tokio::test]
async fn the_router_answers_from_rank_one_and_says_who_served() {
    let (a, b, config) = two_routes().await;
    let dir = tempfile::tempdir().unwrap();
    let router = router(&config, &dir.path().join("freerouter.db")).await;
    let answer = router
        .chat(Request::user("hello"))
        .await
        .expect("an answer");
    assert_eq!(answer.text(), ANSWER);
    assert_eq!(answer.served.route_id, "pa/model-a");
    assert_eq!(answer.served.provider, "pa");
    assert_eq!(answer.served.attempts, 1);
    assert!(!answer.served.fell_back());
    assert_eq!(answer.body["object"], "chat.completion");
    assert_eq!((a.calls("model-a"), b.calls("model-b")), (1, 0));
    assert_eq!(router.models()[..3], ["auto", "auto-fast", "auto-balanced"]);
    assert!(router.models().contains(&"pb/model-b".to_string()));
    router.shutdown().await;
}

#[tokio::test]
async fn a_429_at_rank_one_falls_back_to_rank_two_in_the_router() {
    let (a, _b, config) = two_routes().await;
    a.model("model-a").then(Behavior::rate_limited(Some("30")));
    let dir = tempfile::tempdir().unwrap();
    let router = router(&config, &dir.path().join("freerouter.db")).await;
    let answer = router
        .chat(json!({"messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let answer = answer.expect("served by rank two");
    assert_eq!(answer.served.route_id, "pb/model-b");
    assert!(answer.served.fell_back());
    assert_eq!(answer.served.trail, "pa/model-a:429,pb/model-b:ok");
    // Rank one rests: the next request goes to rank two at once.
    let again = router.chat(Request::user("again")).await.unwrap();
    assert_eq!(again.served.attempts, 1);
    assert_eq!(again.served.route_id, "pb/model-b");
    assert_eq!(a.calls("model-a"), 1);
    router.shutdown().await;
}

#[tokio::test]
async fn a_streamed_answer_arrives_as_chunks_and_a_cut_stream_is_completed_elsewhere() {
    let (a, b, config) = two_routes().await;
    let dir = tempfile::tempdir().unwrap();
    let router = router(&config, &dir.path().join("freerouter.db")).await;

    let mut stream = router.chat_stream(Request::user("tell me")).await.unwrap();
    assert_eq!(stream.served().route_id, "pa/model-a");
    let mut chunks = 0;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("no error in the stream");
        assert_eq!(chunk.body["object"], "chat.completion.chunk");
        text.push_str(chunk.text());
        chunks += 1;
    }
    assert_eq!(text, ANSWER);
    assert!(chunks > 3, "chunks as they came, not one blob: {chunks}");

    a.model("model-a").then(Behavior::CutAfter { chunks: 4 });
    let stream = router.chat_stream(Request::user("tell me")).await.unwrap();
    assert_eq!(stream.text().await.expect("rescued"), ANSWER);
    assert_eq!(b.calls("model-b"), 1, "continued on rank two");
    router.shutdown().await;
}

#[tokio::test]
async fn a_stream_no_route_can_continue_ends_with_a_stream_error() {
    let (a, b, config) = two_routes().await;
    a.model("model-a").then(Behavior::CutAfter { chunks: 3 });
    b.model("model-b")
        .refuse_prefill(true)
        .answer("Something else entirely, said differently.");
    let dir = tempfile::tempdir().unwrap();
    let router = router(&config, &dir.path().join("freerouter.db")).await;
    let mut stream = router.chat_stream(Request::user("tell me")).await.unwrap();
    let mut last = None;
    while let Some(item) = stream.next().await {
        last = Some(item);
    }
    match last {
        Some(Err(RouterError::StreamFailed { code, .. })) => assert!(!code.is_empty()),
        other => panic!("the stream should end with its error, got {other:?}"),
    }
    router.shutdown().await;
}

#[tokio::test]
async fn embeddings_come_back_as_the_models_vectors() {
    let sim = Simulator::start().await;
    sim.model("embed-a");
    let config = GatewayConfig::new().provider("pa", &sim).route_with(
        "pa",
        "embed-a",
        1,
        "context_window = 8192\ntags = [\"embeddings\"]",
    );
    let dir = tempfile::tempdir().unwrap();
    let router = router(&config, &dir.path().join("freerouter.db")).await;
    let answer = router
        .embeddings(Request::embed(json!(["one", "two"])))
        .await
        .expect("embedded");
    assert_eq!(answer.model, "embed-a");
    assert_eq!(answer.served.route_id, "pa/embed-a");
    assert_eq!(
        answer.vectors(),
        vec![
            embedding_of("embed-a", "one", DEFAULT_DIMENSIONS),
            embedding_of("embed-a", "two", DEFAULT_DIMENSIONS)
        ]
    );
    router.shutdown().await;
}

#[tokio::test]
async fn refusals_come_back_typed_with_the_gateways_status_and_code() {
    let (_a, _b, config) = two_routes().await;
    let dir = tempfile::tempdir().unwrap();
    let router = router(&config, &dir.path().join("freerouter.db")).await;
    match router.chat(json!({"messages": []})).await {
        Err(RouterError::Refused {
            status,
            code,
            param,
            ..
        }) => {
            assert_eq!((status, code), (400, "invalid_request"));
            assert_eq!(param.as_deref(), Some("messages"));
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    let strict = Request::user("hi").model("no-such-model").strict();
    let error = router.chat(strict).await.expect_err("unknown and strict");
    assert_eq!(error.code(), Some("model_not_found"));
    router.shutdown().await;
}

#[tokio::test]
async fn a_gateway_and_a_router_on_one_file_spend_a_keys_daily_quota_together() {
    let (a, b) = (Simulator::start().await, Simulator::start().await);
    a.model("model-a").answer(ANSWER);
    b.model("model-b").answer(ANSWER);
    // Rank one may be asked twice a day, by anyone on this file.
    let config = GatewayConfig::new()
        .provider("pa", &a)
        .provider("pb", &b)
        .route_with(
            "pa",
            "model-a",
            1,
            "context_window = 100000\nlimits = { rpd = 2 }",
        )
        .route("pb", "model-b", 2);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let gateway = config.clone().in_dir(dir.clone()).start().await;
    let router = router(&config, &gateway.db_path).await;

    let first = router.chat(Request::user("one")).await.unwrap();
    assert_eq!(first.served.route_id, "pa/model-a");
    let second = gateway.chat(&ask("auto", "two")).await;
    assert_eq!(header(&second, "x-gateway-route"), "pa/model-a");
    // The day's two are spent between them: both now go to rank two without asking rank one.
    let third = gateway.chat(&ask("auto", "three")).await;
    assert_eq!(header(&third, "x-gateway-route"), "pb/model-b");
    let fourth = router.chat(Request::user("four")).await.unwrap();
    assert_eq!(fourth.served.route_id, "pb/model-b");
    assert_eq!(a.calls("model-a"), 2);

    // The router's requests are in the file's request log beside the gateway's.
    router.shutdown().await;
    let db_path = gateway.db_path.clone();
    gateway.stop().await;
    let store = freerouter::store::Store::open(&db_path, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let rows = store.recent_request_logs(10).await.unwrap();
    let library = rows.iter().filter(|r| r.endpoint == "library").count();
    let http = rows
        .iter()
        .filter(|r| r.endpoint == "chat_completions")
        .count();
    assert_eq!((library, http), (2, 2));
}

#[tokio::test]
async fn the_ask_example_answers_whole_and_streamed_against_the_simulator() {
    let (_a, b, config) = two_routes().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("freerouter.toml");
    let source = config.source(&dir.path().join("freerouter.db"));
    std::fs::write(&config_path, source.toml.clone().unwrap()).unwrap();
    b.model("model-b").answer("unused");
    let output = tokio::process::Command::new(EXAMPLE)
        .arg("What does the fox do?")
        .env_clear()
        .envs(source.vars)
        .env("FREEROUTER_CONFIG", &config_path)
        .current_dir(dir.path())
        .output()
        .await
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}: {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            ANSWER,
            "-- served by pa/model-a (1 attempt(s): pa/model-a:ok)",
            ANSWER,
            "-- streamed by pa/model-a"
        ]
    );
}

#[tokio::test]
async fn a_route_disabled_in_the_file_by_another_process_reaches_a_running_router() {
    let (_a, _b, config) = two_routes().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("freerouter.db");
    let router = router(&config, &db).await;
    assert_eq!(
        router
            .chat(Request::user("hi"))
            .await
            .unwrap()
            .served
            .route_id,
        "pa/model-a"
    );
    // What `adminctl models disable pa/model-a` does: another handle on the same file.
    let adminctl = freerouter::store::Store::open(&db, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let now = freerouter::time::now_ms();
    freerouter::admin::catalog::set_enabled(&adminctl, "pa/model-a", false, now)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let served = router.chat(Request::user("hi")).await.unwrap().served;
        if served.route_id == "pb/model-b" {
            assert_eq!(served.attempts, 1, "the disabled route is not even tried");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the router never saw the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!router.models().contains(&"pa/model-a".to_string()));
    router.shutdown().await;
}

#[tokio::test]
async fn a_request_may_exclude_routes_that_train_on_prompts_and_ask_at_low_priority() {
    let (logged, private) = (Simulator::start().await, Simulator::start().await);
    logged.model("logged").answer(ANSWER);
    private.model("private").answer(ANSWER);
    let config = GatewayConfig::new()
        .toml(&format!(
            "[providers.pa]\nbase_url = \"{}\"\napi_keys = [\"sk-pa\"]\nlimits = {{ rpd = 4 }}",
            logged.base_url()
        ))
        .provider("pb", &private)
        .route_with(
            "pa",
            "logged",
            1,
            "context_window = 100000\ntags = [\"trains-on-prompts\"]",
        )
        .route("pb", "private", 2)
        .set("routing.low_priority_reserve", "0.5");
    let dir = tempfile::tempdir().unwrap();
    let router = router(&config, &dir.path().join("freerouter.db")).await;
    let served = |answer: freerouter::ChatResponse| answer.served.route_id;

    let kept_out = router
        .chat(Request::user("my medical history").exclude("trains-on-prompts"))
        .await
        .expect("an answer");
    assert_eq!(served(kept_out), "pb/private");
    for turn in 0..3 {
        let answer = router.chat(Request::user("hi")).await.unwrap();
        assert_eq!(
            answer.served.route_id, "pa/logged",
            "turn {turn}: {}",
            answer.served.trail
        );
    }
    // One of four left today: below the half kept in reserve, which a low-priority request
    // leaves to others.
    let low = router.chat(Request::user("batch job").low_priority()).await;
    assert_eq!(served(low.unwrap()), "pb/private");
    assert_eq!(
        served(router.chat(Request::user("a person")).await.unwrap()),
        "pa/logged"
    );
    assert_eq!((logged.calls("logged"), private.calls("private")), (4, 2));
    router.shutdown().await;
}
