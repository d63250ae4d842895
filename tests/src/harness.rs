//! `spawn_gateway`: the real gateway on port 0 with a temporary SQLite file, wired to simulators.
//!
//! Settings the tests share come in as `FREEROUTER__…` variables of the config source (never the
//! process environment, so tests run in parallel); providers and routes as TOML, as users write them.

use crate::simulator::Simulator;
use freerouter::catalog::load_settings;
use freerouter::config::ConfigSource;
use freerouter_gateway::RunningGateway;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

/// Fast defaults so failure paths finish in milliseconds.
const TEST_SETTINGS: &[(&str, &str)] = &[
    ("server.listen", "127.0.0.1:0"),
    ("catalog.defaults", "false"),
    ("catalog.reload_interval_ms", "100"),
    ("storage.log_flush_ms", "50"),
    ("routing.header_timeout_ms", "1500"),
    ("routing.stream_header_timeout_ms", "1500"),
    ("routing.first_token_timeout_ms", "1500"),
    ("routing.stream_idle_timeout_ms", "1500"),
    ("routing.retry_pause_ms", "20"),
    ("routing.stream_tail_grace_ms", "300"),
    ("routing.deadline_ms", "20000"),
    ("limits.per_client_burst", "0"),
    ("log.level", "warn"),
];

/// Installs the TLS provider reqwest needs (once per process).
pub fn init_tls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A gateway configuration being put together.
#[derive(Clone, Default)]
pub struct GatewayConfig {
    toml: String,
    vars: HashMap<String, String>,
    dir: Option<Arc<tempfile::TempDir>>,
    /// A store other than the folder's SQLite file (a `postgres://` URL).
    database: Option<String>,
}

impl GatewayConfig {
    pub fn new() -> Self {
        let mut config = Self::default();
        for (key, value) in TEST_SETTINGS {
            config = config.set(key, value);
        }
        config
    }

    /// A provider of the user's own pointing at a simulator, with one key.
    pub fn provider(self, name: &str, sim: &Simulator) -> Self {
        self.provider_at(name, &sim.base_url(), &format!("sk-sim-{name}-key"))
    }

    /// A provider at any base URL (a closed port, say), with one key.
    pub fn provider_at(mut self, name: &str, base_url: &str, key: &str) -> Self {
        self.toml.push_str(&format!(
            "[providers.{name}]\nbase_url = \"{base_url}\"\napi_keys = [\"{key}\"]\n\n"
        ));
        self
    }

    /// A route: `provider/model` at `rank` with a large window.
    pub fn route(self, provider: &str, model: &str, rank: i64) -> Self {
        self.route_with(provider, model, rank, "context_window = 100000")
    }

    /// A route with extra TOML fields (`context_window = 4096`, `tags = [...]`).
    pub fn route_with(mut self, provider: &str, model: &str, rank: i64, extra: &str) -> Self {
        self.toml.push_str(&format!(
            "[[routes]]\nprovider = \"{provider}\"\nmodel = \"{model}\"\nrank = {rank}\n{extra}\n\n"
        ));
        self
    }

    /// A setting by its dotted name, e.g. `set("limits.max_concurrent_requests", "20")`.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        let var = format!(
            "FREEROUTER__{}",
            key.replace('.', "__").to_ascii_uppercase()
        );
        self.vars.insert(var, value.to_string());
        self
    }

    /// Leaves a setting at the gateway's own default (one the test defaults above would set).
    pub fn unset(mut self, key: &str) -> Self {
        let var = format!(
            "FREEROUTER__{}",
            key.replace('.', "__").to_ascii_uppercase()
        );
        self.vars.remove(&var);
        self
    }

    /// A plain environment variable as the gateway would see it (`CLOUDFLARE_ACCOUNT_ID`, a key…),
    /// without touching the test process's environment.
    pub fn env_var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    /// Raw TOML appended to the config file (a built-in provider's override, say).
    pub fn toml(mut self, text: &str) -> Self {
        self.toml.push_str(text);
        self.toml.push_str("\n\n");
        self
    }

    /// Uses this folder for the database (to restart a gateway on the same file).
    pub fn in_dir(mut self, dir: Arc<tempfile::TempDir>) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Uses this store (a `postgres://` URL) instead of a SQLite file in the folder.
    pub fn on_database(mut self, url: &str) -> Self {
        self.database = Some(url.to_string());
        self
    }

    pub fn source(&self, db: &Path) -> ConfigSource {
        let mut source = ConfigSource::from_toml(self.toml.clone());
        source.vars = self.vars.clone();
        source.vars.insert(
            "FREEROUTER__STORAGE__DATABASE".into(),
            self.database
                .clone()
                .unwrap_or_else(|| db.display().to_string()),
        );
        source
    }

    pub async fn start(self) -> TestGateway {
        init_tls();
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("a temporary folder")));
        let db_path = dir.path().join("freerouter.db");
        let source = self.source(&db_path);
        let settings = load_settings(&source).expect("test settings are valid");
        let gateway = freerouter_gateway::spawn(settings, source)
            .await
            .expect("the gateway starts");
        TestGateway {
            url: gateway.url(),
            gateway,
            db_path,
            dir,
            http: reqwest::Client::new(),
        }
    }
}

/// A running gateway and a client for it.
pub struct TestGateway {
    pub url: String,
    pub gateway: RunningGateway,
    pub db_path: PathBuf,
    pub dir: Arc<tempfile::TempDir>,
    pub http: reqwest::Client,
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `POST /v1/chat/completions` with a JSON body.
    pub async fn chat(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .json(body)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `POST /v1/chat/completions` with raw bytes.
    pub async fn chat_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the gateway answers")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("the gateway answers")
    }

    /// Stops the gateway, flushing its writer.
    pub async fn stop(self) -> Arc<tempfile::TempDir> {
        self.gateway.shutdown().await.expect("a clean shutdown");
        self.dir
    }
}

/// A one-message chat body for `model`.
pub fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// The same, streamed.
pub fn ask_stream(model: &str, text: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": text}]})
}

/// A header as a string ("" when absent).
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A streamed response read whole: the `data:` payloads in order.
pub async fn sse_data(response: reqwest::Response) -> Vec<String> {
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the stream ends within 20 s")
        .expect("the stream reads");
    text.split("\n\n")
        .filter_map(|event| {
            event
                .trim()
                .strip_prefix("data:")
                .map(|d| d.trim().to_string())
        })
        .collect()
}

/// The concatenated `delta.content` of a stream's chunks.
pub fn streamed_text(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// An address nothing listens on.
/// Waits out the last seconds of a UTC day, so a test's requests share one day window.
pub async fn clear_of_utc_midnight() {
    const DAY_MS: i64 = 86_400_000;
    let now = freerouter::time::now_ms();
    let left = (now / DAY_MS + 1) * DAY_MS - now;
    if left < 30_000 {
        tokio::time::sleep(Duration::from_millis(left as u64 + 100)).await;
    }
}

pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

/// A FreeRouter program running as its own OS process (the real `main.rs`), with its log kept.
pub struct ServiceProcess {
    pub url: String,
    /// Every log line it has written so far (JSON).
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    child: tokio::process::Child,
}

/// The gateway as a process.
pub type GatewayProcess = ServiceProcess;

impl GatewayConfig {
    /// Starts the gateway `binary` (an integration test's `env!("CARGO_BIN_EXE_gateway-under-test")`)
    /// as a separate process with this configuration (file, variables) on the database in `dir`,
    /// and waits until it listens.
    pub async fn start_process(&self, binary: &str, dir: &Path) -> GatewayProcess {
        self.start_service(binary, dir, "gateway listening").await
    }

    /// Starts any of the programs (gateway, maintainer) and waits for its `listening` log line.
    pub async fn start_service(&self, binary: &str, dir: &Path, listening: &str) -> ServiceProcess {
        self.start_service_with_args(binary, dir, listening, &[])
            .await
    }

    /// The same, with command-line arguments (the gateway's `--demo`).
    pub async fn start_service_with_args(
        &self,
        binary: &str,
        dir: &Path,
        listening: &str,
        args: &[&str],
    ) -> ServiceProcess {
        let config_path = unique_path(dir.join(format!("freerouter-{}.toml", std::process::id())));
        std::fs::write(&config_path, &self.toml).expect("write the config file");
        let source = self.source(&dir.join("freerouter.db"));
        let mut command = tokio::process::Command::new(binary);
        command
            .args(args)
            .env_clear()
            .envs(source.vars)
            .env("FREEROUTER_CONFIG", &config_path)
            .env("FREEROUTER__LOG__JSON", "true")
            .env("FREEROUTER__LOG__LEVEL", "info")
            .env("FREEROUTER__MAINTAINER__LISTEN", "127.0.0.1:0")
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the binary starts");
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(keep_lines(stderr, log.clone(), None));
        let stdout = child.stdout.take().expect("piped stdout");
        let (found, addr) = tokio::sync::oneshot::channel();
        tokio::spawn(keep_lines(
            stdout,
            log.clone(),
            Some((listening.to_string(), found)),
        ));
        let addr = tokio::time::timeout(Duration::from_secs(20), addr)
            .await
            .expect("the process listens within 20 s")
            .expect("the process says where it listens");
        ServiceProcess {
            url: format!("http://{addr}"),
            log,
            child,
        }
    }
}

fn unique_path(path: PathBuf) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    path.with_extension(format!("{n}.toml"))
}

/// Keeps a process's output lines; reports the address of the `listening` line when asked.
async fn keep_lines(
    output: impl tokio::io::AsyncRead + Unpin,
    log: Arc<std::sync::Mutex<Vec<String>>>,
    mut listening: Option<(String, tokio::sync::oneshot::Sender<String>)>,
) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some((message, _)) = &listening
            && let Ok(entry) = serde_json::from_str::<Value>(&line)
            && entry.pointer("/fields/message").and_then(Value::as_str) == Some(message.as_str())
            && let Some(addr) = entry.pointer("/fields/addr").and_then(Value::as_str)
            && let Some((_, sender)) = listening.take()
        {
            let _ = sender.send(addr.to_string());
        }
        log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

impl ServiceProcess {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Log lines containing `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// SIGTERM, and wait for a clean exit (in-flight requests drained, writers flushed).
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the process exits within 30 s of SIGTERM")
            .expect("the exit status")
    }

    /// SIGKILL, as a crash would.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}
