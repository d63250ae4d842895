//! The console's pages in demo mode, captured in Chromium: the chat playground answering, then,
//! after a newcomer's loop of requests (fallbacks, then every tier out of quota), the overview,
//! models and status pages. Saved to the folder `FREEROUTER_SCREENSHOTS` names
//! (`scripts/screenshots` sets `docs/screenshots`, which the README shows), else to
//! `$CARGO_TARGET_DIR/screenshots/demo`.

use crate::browser::{WAIT, screenshot_dir, screenshot_to, text_of, with_browser};
use fantoccini::{Client, Locator};
use freerouter_tests::harness::{GatewayConfig, ask};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn folder() -> PathBuf {
    let dir = std::env::var_os("FREEROUTER_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| screenshot_dir().join("demo"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Opens a page, checks its heading and the demo banner, and saves it as `NAME.png`.
async fn capture(client: &Client, base: &str, path: &str, heading: &str, dir: &Path, name: &str) {
    client.goto(&format!("{base}{path}")).await.unwrap();
    assert_eq!(text_of(client, "main h1").await, heading, "{path}");
    save(client, dir, name).await;
}

/// Saves the page as it is now as `NAME.png`, after checking it carries the demo banner.
async fn save(client: &Client, dir: &Path, name: &str) {
    assert!(text_of(client, ".demo-banner").await.contains("Demo mode"));
    let file = dir.join(format!("{name}.png"));
    screenshot_to(client, &file).await;
    let png = std::fs::read(&file).unwrap();
    assert!(png.len() > 10_000, "{name}.png is {} bytes", png.len());
}

/// Asks the playground a question and waits for the whole answer.
async fn ask_in_the_playground(client: &Client, question: &str) -> String {
    client
        .find(Locator::Css("textarea#prompt"))
        .await
        .unwrap()
        .send_keys(question)
        .await
        .unwrap();
    client
        .find(Locator::Css("button#send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
        match state[0].as_str().unwrap_or("") {
            "done" => return state[1].as_str().unwrap_or("").to_string(),
            "error" => panic!("the chat failed: {}", text_of(client, "#error").await),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the answer never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_console_page_in_demo_mode_is_captured_after_a_loop_of_requests() {
    let gateway = GatewayConfig::new()
        .set("demo.enabled", "true")
        .start()
        .await;
    let dir = folder();
    with_browser(|client| async move {
        let base = gateway.url.clone();
        client.goto(&format!("{base}/chat")).await.unwrap();
        let answer = ask_in_the_playground(&client, "What does FreeRouter do?").await;
        assert!(answer.starts_with("Hello from demo/sage-70b"), "{answer}");
        assert_eq!(text_of(&client, "#route").await, "demo/sage-70b");
        save(&client, &dir, "chat").await;
        // Then a newcomer's loop fills the other pages: fallbacks, and every tier out of quota.
        let mut exhausted = false;
        for _ in 0..60 {
            let response = gateway.chat(&ask("auto", "Show me a fallback")).await;
            if response.status() == 429 {
                exhausted = true;
                break;
            }
        }
        assert!(exhausted, "the loop ends with every tier out of quota");
        capture(&client, &base, "/", "Overview", &dir, "overview").await;
        capture(&client, &base, "/models", "Models", &dir, "models").await;
        capture(&client, &base, "/status", "Status", &dir, "status").await;
    })
    .await;
}
