//! The web console in a real browser: headless Chromium driven through chromedriver (WebDriver),
//! against a gateway wired to the simulator. Every page renders and is saved as a screenshot
//! (`$CARGO_TARGET_DIR/screenshots/*.png`), accepting a pending route in the page makes the gateway
//! route to it, the chat page streams an answer and shows the route that served it, and a change
//! without the admin session is refused.
//!
//! Without `chromedriver` or Chromium these tests fail in CI and are skipped elsewhere (Debian:
//! `apt-get install chromium chromium-driver`).

use crate::browser::{WAIT, screenshot, text_becomes, text_of, with_browser};
use fantoccini::{Client, Locator};
use freerouter::store::Store;
use freerouter_tests::harness::{GatewayConfig, TestGateway, ask, ask_stream, header, sse_data};
use freerouter_tests::simulator::{Behavior, Simulator};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN: &str = "console-admin-token-2";

/// Opens `path` and checks the page's heading.
async fn open(client: &Client, gateway: &TestGateway, path: &str, heading: &str) {
    client.goto(&gateway.url(path)).await.unwrap();
    assert_eq!(text_of(client, "main h1").await, heading, "{path}");
}

/// The answer the second route streams, a word at a time.
const ANSWER: &str = "The quick brown fox jumps over the lazy dog, one word at a time.";

/// Upstreams for the console: `alpha/m1` (ranked first, rate-limited on its first call),
/// `beta/m2` (streams [`ANSWER`] slowly), and `lab`, whose listing holds a new free model.
struct Upstreams {
    alpha: Simulator,
    beta: Simulator,
    lab: Simulator,
}

async fn upstreams() -> Upstreams {
    let (alpha, beta, lab) = (
        Simulator::start().await,
        Simulator::start().await,
        Simulator::start().await,
    );
    alpha.model("m1").then(Behavior::rate_limited(Some("120")));
    beta.model("m2").answer(ANSWER).chunk_delay_ms(60);
    lab.model("fresh:free")
        .answer("Hello from the accepted route.");
    lab.list_extra(json!({"id": "fresh:free", "object": "model"}));
    Upstreams { alpha, beta, lab }
}

/// A provider with one key and free-tier limits, so the status page has quota to draw.
fn limited(name: &str, sim: &Simulator) -> String {
    format!(
        "[providers.{name}]\nbase_url = \"{}\"\napi_keys = [\"sk-sim-{name}-key\"]\n\
         limits = {{ rpm = 4, rpd = 1000, tpm = 6000, tpd = 100000 }}",
        sim.base_url()
    )
}

async fn gateway(up: &Upstreams) -> TestGateway {
    GatewayConfig::new()
        .set("auth.admin_token", ADMIN)
        .toml(&limited("alpha", &up.alpha))
        .toml(&limited("beta", &up.beta))
        .toml(&limited("lab", &up.lab))
        .route_with(
            "alpha",
            "m1",
            1,
            "context_window = 100000\ntags = [\"tools\", \"json\"]",
        )
        .route_with(
            "beta",
            "m2",
            2,
            "context_window = 32768\ntags = [\"tools\"]",
        )
        .start()
        .await
}

/// A gateway with traffic behind it (a fallback, successes, an error) and a pending suggestion.
async fn busy_gateway(up: &Upstreams) -> TestGateway {
    let gateway = gateway(up).await;
    assert_eq!(gateway.chat(&ask("auto", "one")).await.status(), 200);
    let _ = sse_data(gateway.chat(&ask_stream("auto", "two")).await).await;
    let strict = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("x-freerouter-strict", "true")
        .json(&ask("no-such-model", "three"))
        .send()
        .await
        .unwrap();
    assert_eq!(strict.status(), 404);
    // The maintainer's diagnosis, run over the admin API, finds the new free model.
    let refreshed = gateway
        .http
        .post(gateway.url("/v1/gateway/endpoint-diagnosis/refresh"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    // Let the log writer flush (every 50 ms in tests) so the pages show the traffic.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway
}

#[tokio::test]
async fn every_page_renders_in_chromium_and_a_change_without_the_token_is_refused() {
    let up = upstreams().await;
    let gateway = busy_gateway(&up).await;
    with_browser(|client| async move {
        open(&client, &gateway, "/", "Overview").await;
        assert!(text_of(&client, ".cards").await.contains("Success rate"));
        client
            .find(Locator::Css("svg.chart rect.served"))
            .await
            .unwrap();
        assert!(text_of(&client, "main").await.contains("alpha"));
        screenshot(&client, "overview").await;

        open(&client, &gateway, "/status", "Status").await;
        let status = text_of(&client, "main").await;
        for expected in [
            "Quota per key",
            "Fallbacks by reason",
            "429",
            "model_not_found",
        ] {
            assert!(status.contains(expected), "/status lacks {expected}");
        }
        client.find(Locator::Css("svg.meter")).await.unwrap();
        screenshot(&client, "status").await;

        open(&client, &gateway, "/models", "Models").await;
        let card = text_of(
            &client,
            r#"article.suggestion[data-route="lab/fresh:free"]"#,
        )
        .await;
        assert!(card.contains("add_route"), "{card}");
        assert!(
            client
                .find_all(Locator::Css("button.accept"))
                .await
                .unwrap()
                .is_empty(),
            "no Accept button without the admin session"
        );
        screenshot(&client, "models-read-only").await;

        // A page script posting a change without the session is refused, and nothing changes.
        let status = client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch('/models/disable', {method: 'POST',
                     headers: {'content-type': 'application/x-www-form-urlencoded'},
                     body: 'route=beta%2Fm2&csrf=guess'}).then(r => done(r.status));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(status, json!(403));
        let store = Store::open(&gateway.db_path, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(store.get_route("beta/m2").await.unwrap().unwrap().enabled);

        open(&client, &gateway, "/login", "Sign in").await;
        client.find(Locator::Css("input#token")).await.unwrap();
        screenshot(&client, "login").await;
    })
    .await;
}

#[tokio::test]
async fn signing_in_and_accepting_a_pending_route_makes_the_gateway_route_to_it() {
    let up = upstreams().await;
    let gateway = busy_gateway(&up).await;
    with_browser(|client| async move {
        open(&client, &gateway, "/login", "Sign in").await;
        let token = client.find(Locator::Css("input#token")).await.unwrap();
        token.send_keys("not the token").await.unwrap();
        client
            .find(Locator::Css("form.login button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(
            text_of(&client, "p.notice.error")
                .await
                .contains("not the admin token")
        );

        let token = client.find(Locator::Css("input#token")).await.unwrap();
        token.send_keys(ADMIN).await.unwrap();
        client
            .find(Locator::Css("form.login button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // Signed in, the form redirects to the catalog, which now has its forms.
        text_becomes(&client, "main h1", "Models").await;
        text_of(&client, "header .badge.ok").await;
        let cookie = client
            .execute("return document.cookie", vec![])
            .await
            .unwrap();
        assert_eq!(cookie, json!(""), "the session cookie is HttpOnly");
        screenshot(&client, "models-admin").await;

        let accept = r#"article.suggestion[data-route="lab/fresh:free"] button.accept"#;
        client
            .find(Locator::Css(accept))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let notice = text_of(&client, "p.notice.ok").await;
        assert!(notice.contains("Accepted: lab/fresh:free"), "{notice}");
        let row = text_of(&client, r#"tr[data-route="lab/fresh:free"]"#).await;
        assert!(row.contains("yes"), "the accepted route is enabled: {row}");
        screenshot(&client, "models-accepted").await;

        // The gateway picks the change up within its reload interval and routes there.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response = gateway
                .http
                .post(gateway.url("/v1/chat/completions"))
                .header("x-freerouter-strict", "true")
                .json(&ask("lab/fresh:free", "hello"))
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                assert_eq!(header(&response, "x-gateway-route"), "lab/fresh:free");
                let body: Value = response.json().await.unwrap();
                assert_eq!(
                    body["choices"][0]["message"]["content"],
                    "Hello from the accepted route."
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the accepted route is never used"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_chat_page_streams_an_answer_and_shows_the_route_that_served_it() {
    let up = upstreams().await;
    // No traffic before: the browser's request is the one that meets the 429 and falls back.
    let gateway = gateway(&up).await;
    with_browser(|client| async move {
        open(&client, &gateway, "/chat", "Chat").await;
        let models = text_of(&client, "select#model").await;
        assert!(
            models.contains("auto") && models.contains("beta/m2"),
            "{models}"
        );
        client
            .find(Locator::Css("textarea#prompt"))
            .await
            .unwrap()
            .send_keys("Tell me about the fox.")
            .await
            .unwrap();
        client
            .find(Locator::Css("button#send"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // Watch the answer grow: at least one partial text before the whole.
        let expected = ANSWER;
        let mut partial = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let state = client
                .execute(
                    "const o = document.getElementById('output');
                     return o ? [o.dataset.state, o.textContent] : ['', ''];",
                    vec![],
                )
                .await
                .unwrap();
            let (state, text) = (
                state[0].as_str().unwrap_or(""),
                state[1].as_str().unwrap_or(""),
            );
            if state == "done" {
                assert_eq!(text, expected);
                break;
            }
            assert_ne!(
                state,
                "error",
                "the chat failed: {}",
                text_of(&client, "#error").await
            );
            if !text.is_empty() && text != expected {
                partial.push(text.to_string());
            }
            assert!(Instant::now() < deadline, "the answer never finished");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            partial.iter().any(|p| expected.starts_with(p.as_str())),
            "the answer was shown only at the end, not as it streamed"
        );
        assert_eq!(text_of(&client, "#route").await, "beta/m2");
        let trail = text_of(&client, "#trail").await;
        assert!(
            trail.contains("alpha/m1:429") && trail.contains("beta/m2:ok"),
            "{trail}"
        );
        assert_eq!(text_of(&client, "#attempts").await, "2");
        screenshot(&client, "chat").await;
    })
    .await;
}
