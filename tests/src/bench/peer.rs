//! Another gateway to compare with, in front of the same simulators: LiteLLM's proxy (PyPI
//! `litellm[proxy]`), started with a generated config of two OpenAI-compatible models, `fast` and
//! `slow`, one per simulator.
//!
//! It runs with its defaults but two: a master key (it refuses to start without one, so requests
//! carry it as a bearer token) and `LITELLM_LOCAL_MODEL_COST_MAP=True` (its price list from the
//! package instead of a download at start).

use super::procfs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A peer gateway the benchmark knows how to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerKind {
    LiteLlm,
}

impl PeerKind {
    pub fn parse(name: &str) -> Result<PeerKind, String> {
        match name {
            "litellm" => Ok(PeerKind::LiteLlm),
            other => Err(format!("unknown peer `{other}` (known: litellm)")),
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            PeerKind::LiteLlm => "LiteLLM",
        }
    }
}

/// A running peer; its processes are killed when dropped.
#[derive(Debug)]
pub struct Peer {
    pub title: String,
    /// Its OpenAI-compatible base, `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    pub bearer: String,
    pub fast_model: String,
    pub slow_model: String,
    child: tokio::process::Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Peer {
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Its process and every process it started (workers), for CPU and memory.
    pub fn processes(&self) -> Vec<u32> {
        procfs::process_tree(self.pid())
    }

    /// The last lines of its output.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

/// The `litellm` command: `explicit`, else `litellm` on `PATH`.
pub fn find_litellm(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.is_file().then(|| path.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("litellm"))
            .find(|candidate| candidate.is_file())
    })
}

/// LiteLLM's proxy config: two models on OpenAI-compatible endpoints and the master key.
pub fn litellm_config(fast_base_url: &str, slow_base_url: &str, master_key: &str) -> String {
    let model = |name: &str, base: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/chat\n      api_base: {base}\n      api_key: sk-bench\n"
        )
    };
    format!(
        "model_list:\n{}{}general_settings:\n  master_key: {master_key}\nlitellm_settings:\n  telemetry: false\n",
        model("fast", fast_base_url),
        model("slow", slow_base_url),
    )
}

/// Starts the peer in front of the two simulators and waits until it answers a chat request with
/// `answer`; `Err` says why it cannot be run.
pub async fn start(
    kind: &PeerKind,
    binary: Option<&Path>,
    fast_base_url: &str,
    slow_base_url: &str,
    http: &reqwest::Client,
    answer: &str,
) -> Result<Peer, String> {
    let PeerKind::LiteLlm = kind;
    let binary = find_litellm(binary).ok_or(
        "LiteLLM is not installed (no `litellm` on PATH; `pip install 'litellm[proxy]'`, or pass --peer-bin PATH)",
    )?;
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary folder: {e}"))?;
    let master_key = format!("sk-bench-{:032x}", rand_u128());
    let config = dir.path().join("litellm.yaml");
    std::fs::write(
        &config,
        litellm_config(fast_base_url, slow_base_url, &master_key),
    )
    .map_err(|e| format!("writing {}: {e}", config.display()))?;
    let port = free_port()?;
    let log = dir.path().join("litellm.log");
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = tokio::process::Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let mut peer = Peer {
        title: kind.title().to_string(),
        base_url: format!("http://127.0.0.1:{port}/v1"),
        bearer: master_key,
        fast_model: "fast".to_string(),
        slow_model: "slow".to_string(),
        child,
        log,
        _dir: dir,
    };
    let ready = wait_until_it_answers(&mut peer, http, answer).await;
    ready.map(|()| peer)
}

/// Polls a chat request until it is answered with `answer` (LiteLLM takes seconds to import and
/// start), for at most 120 s, or until the process exits.
async fn wait_until_it_answers(
    peer: &mut Peer,
    http: &reqwest::Client,
    answer: &str,
) -> Result<(), String> {
    let started = Instant::now();
    let body = serde_json::json!({
        "model": peer.fast_model,
        "messages": [{"role": "user", "content": "Say something short."}],
    });
    let url = format!("{}/chat/completions", peer.base_url);
    let mut last = String::from("no answer yet");
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(Some(status)) = peer.child.try_wait() {
            return Err(format!(
                "{} exited at start ({status}); its output ends with:\n{}",
                peer.title,
                peer.log_tail()
            ));
        }
        match http
            .post(&url)
            .bearer_auth(&peer.bearer)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status == 200 && text.contains(answer) {
                    return Ok(());
                }
                last = format!("{status}: {}", text.chars().take(300).collect::<String>());
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!(
        "{} did not answer within 120 s (last: {last}); its output ends with:\n{}",
        peer.title,
        peer.log_tail()
    ))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A port nobody listens on now (the peer binds it a moment later).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A value for the master key that differs per run (not a secret: the proxy is on loopback for
/// the length of the run).
fn rand_u128() -> u128 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_nanos() ^ (u128::from(std::process::id()) << 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_litellm_config_names_both_models_and_the_key() {
        let config = litellm_config(
            "http://127.0.0.1:1/v1",
            "http://127.0.0.1:2/v1",
            "sk-bench-00",
        );
        assert_eq!(
            config,
            "model_list:\n\
             \x20 - model_name: fast\n    litellm_params:\n      model: openai/chat\n      api_base: http://127.0.0.1:1/v1\n      api_key: sk-bench\n\
             \x20 - model_name: slow\n    litellm_params:\n      model: openai/chat\n      api_base: http://127.0.0.1:2/v1\n      api_key: sk-bench\n\
             general_settings:\n  master_key: sk-bench-00\nlitellm_settings:\n  telemetry: false\n"
        );
    }

    #[test]
    fn only_known_peers_are_accepted() {
        assert_eq!(PeerKind::parse("litellm"), Ok(PeerKind::LiteLlm));
        assert!(PeerKind::parse("helicone").is_err());
    }

    #[test]
    fn an_explicit_binary_that_does_not_exist_is_not_found() {
        assert_eq!(find_litellm(Some(Path::new("/nonexistent/litellm"))), None);
    }
}
