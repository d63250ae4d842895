//! Headless Chromium driven through chromedriver (WebDriver) for the console's browser tests:
//! one browser at a time, within a time limit, closed however the test ends; whole-page
//! screenshots. Without `chromedriver` or Chromium a test fails in CI and is skipped elsewhere
//! (Debian: `apt-get install chromium chromium-driver`).

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
/// How long one browser test may take in all, so a stuck browser fails instead of hanging CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(150);
/// How long to wait for something to appear on a page.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// One Chromium at a time: each is a few hundred MB, and the machine has two cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A headless Chromium session and the chromedriver serving it (killed on drop).
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Starts chromedriver on a free port and opens a headless Chromium session; `None` (skip) when
/// either is missing outside CI.
async fn browser() -> Option<Browser> {
    let driver = on_path("chromedriver");
    let chromium = CHROMIUM.iter().map(Path::new).find(|p| p.is_file());
    let (Some(driver), Some(chromium)) = (driver, chromium) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver or chromium is missing in CI: install Debian's chromium and chromium-driver"
        );
        eprintln!(
            "skipping the browser test: install Debian's `chromium` and `chromium-driver` to run it"
        );
        return None;
    };
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1100", "--hide-scrollbars", "--no-first-run",
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Some(Browser {
                    client,
                    _driver: child,
                });
            }
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("no WebDriver session within 20 s: {error}"),
        }
    }
}

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots`, else the target folder this test runs from.
pub(crate) fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // …/target/debug/deps/e2e-HASH
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves the whole page: the window grows to the page's height for the shot (WebDriver captures
/// only the viewport), then returns to its size.
pub(crate) async fn screenshot(client: &Client, name: &str) {
    screenshot_to(client, &screenshot_dir().join(format!("{name}.png"))).await;
}

/// The same, to `path`.
pub(crate) async fn screenshot_to(client: &Client, path: &Path) {
    let height = client
        .execute(
            "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(1100)
        .clamp(600, 5000);
    client.set_window_size(1280, height as u32).await.unwrap();
    let png = client.screenshot().await.expect("a screenshot");
    client.set_window_size(1280, 1100).await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The text of the first element matching `css`, once it appears. A page that is still loading
/// (a form's redirect) can replace the element between finding and reading it: then it is looked
/// up again.
pub(crate) async fn text_of(client: &Client, css: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let element = client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
        match element.text().await {
            Ok(text) => return text,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                    && Instant::now() < deadline =>
            {
                continue;
            }
            Err(e) => panic!("the text of {css}: {e}"),
        }
    }
}

/// Waits until the first element matching `css` reads `expected`: after a click that submits a
/// form, the page being left can still be read until the next one has loaded.
pub(crate) async fn text_becomes(client: &Client, css: &str, expected: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = text_of(client, css).await;
        if text == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} reads {text:?}, never {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a browser test body with a browser, one at a time, within [`TEST_TIMEOUT`]. The session is
/// closed (so Chromium quits) whether the body passes, fails or times out.
pub(crate) async fn with_browser<F, Fut>(body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let _one = ONE_BROWSER.lock().await;
    let Some(browser) = browser().await else {
        return;
    };
    let outcome = tokio::spawn(tokio::time::timeout(
        TEST_TIMEOUT,
        body(browser.client.clone()),
    ))
    .await;
    let _ = browser.client.close().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the browser test did not finish within {TEST_TIMEOUT:?}"),
        Err(failed) => std::panic::resume_unwind(failed.into_panic()),
    }
}
