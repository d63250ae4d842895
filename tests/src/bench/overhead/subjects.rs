//! The servers the overhead benchmark sends its load to, each with the three requests it repeats and
//! the processes whose CPU and memory count: the simulator itself (direct), the gateway with and
//! without the quota ledger, and a peer gateway.

use crate::bench::load::Target;
use crate::bench::peer::Peer;
use crate::bench::procfs;
use crate::bench::upstream::SimulatorProcess;
use crate::harness::{GatewayConfig, GatewayProcess, ask, ask_stream};
use std::path::Path;

/// What the simulators answer; a request counts as served only when its answer ends with
/// [`ANSWER_END`] (a stream cut short does not).
pub const ANSWER: &str = "The quick brown fox jumps over the lazy dog.";
pub const ANSWER_END: &str = "dog.";

const PROMPT: &str = "Say something short.";

/// Whose CPU and memory a subject's figures are.
#[derive(Clone, Debug)]
pub enum Processes {
    /// These processes.
    Fixed(Vec<u32>),
    /// This process and whatever it has started by the time of a reading.
    TreeOf(u32),
}

impl Processes {
    pub fn now(&self) -> Vec<u32> {
        match self {
            Processes::Fixed(pids) => pids.clone(),
            Processes::TreeOf(pid) => procfs::process_tree(*pid),
        }
    }
}

/// One server under load.
#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    /// Non-streamed, to the 0 ms upstream.
    pub plain: Target,
    /// Streamed, to the 0 ms upstream.
    pub stream: Target,
    /// Non-streamed, to the upstream with latency.
    pub slow: Target,
    pub processes: Processes,
    /// Whether the figures include the subject's memory (not for direct: that is the simulator's).
    pub has_memory: bool,
}

/// A server at `base` (`http://…/v1`) serving the two upstreams as `fast_model` and `slow_model`.
fn targets(base: &str, fast_model: &str, slow_model: &str, bearer: Option<&str>) -> [Target; 3] {
    let url = format!("{base}/chat/completions");
    [
        ask(fast_model, PROMPT),
        ask_stream(fast_model, PROMPT),
        ask(slow_model, PROMPT),
    ]
    .map(|body| {
        Target::new(url.clone(), &body)
            .with_bearer(bearer)
            .must_contain(ANSWER_END)
    })
}

/// Straight to the simulators; the CPU counted is the 0 ms simulator's.
pub fn direct(fast: &SimulatorProcess, slow: &SimulatorProcess) -> Subject {
    let [plain, stream, _] = targets(&fast.base_url(), "chat", "chat", None);
    let [_, _, slow_target] = targets(&slow.base_url(), "chat", "chat", None);
    Subject {
        name: "direct (the simulator itself)".to_string(),
        plain,
        stream,
        slow: slow_target,
        processes: Processes::Fixed(vec![fast.pid()]),
        has_memory: false,
    }
}

/// Through a gateway process started by [`start_gateway`].
pub fn gateway(name: &str, gateway: &GatewayProcess) -> Subject {
    let [plain, stream, slow] = targets(&gateway.url("/v1"), "auto", "slow/chat", None);
    Subject {
        name: name.to_string(),
        plain,
        stream,
        slow,
        processes: Processes::Fixed(gateway.pid().into_iter().collect()),
        has_memory: true,
    }
}

/// Through a peer gateway.
pub fn peer(peer: &Peer) -> Subject {
    let [plain, stream, slow] = targets(
        &peer.base_url,
        &peer.fast_model,
        &peer.slow_model,
        Some(&peer.bearer),
    );
    Subject {
        name: peer.title.clone(),
        plain,
        stream,
        slow,
        processes: Processes::TreeOf(peer.pid()),
        has_memory: true,
    }
}

/// Starts a gateway process with providers `fast` and `slow` (one simulator each, one key each)
/// and `routes` routes: `fast/chat` first (what `auto` picks), `slow/chat`, then spares on `fast`
/// that rank below and are never needed. With `ledger`, both providers have limits far above what
/// the run spends, so every request reserves and settles quota; without, they have none. The store
/// is a SQLite file in `dir`, or `database` (a `postgres://` URL).
///
/// Default settings but a larger concurrency limit and queue (`256`, `1024`) and no per-client
/// limit (its default, 20 a second, would refuse a benchmark from one address).
pub async fn start_gateway(
    binary: &Path,
    fast: &SimulatorProcess,
    slow: &SimulatorProcess,
    routes: usize,
    ledger: bool,
    dir: &Path,
    database: Option<&str>,
) -> GatewayProcess {
    let limits = if ledger {
        "limits = { rpm = 100000000, rpd = 1000000000, tpm = 1000000000000, tpd = 1000000000000 }"
    } else {
        ""
    };
    let mut config = GatewayConfig::new()
        .toml(&format!(
            "[providers.fast]\nbase_url = \"{}\"\napi_keys = [\"sk-bench\"]\n{limits}\n\n\
             [providers.slow]\nbase_url = \"{}\"\napi_keys = [\"sk-bench\"]\n{limits}",
            fast.base_url(),
            slow.base_url()
        ))
        .route("fast", "chat", 1)
        .route("slow", "chat", 2);
    // The harness's settings are fast timeouts for failure tests; a benchmark runs the defaults.
    for (key, value) in [
        ("storage.log_flush_ms", "250"),
        ("catalog.reload_interval_ms", "1000"),
        ("routing.header_timeout_ms", "30000"),
        ("routing.stream_header_timeout_ms", "10000"),
        ("routing.first_token_timeout_ms", "10000"),
        ("routing.stream_idle_timeout_ms", "10000"),
        ("routing.retry_pause_ms", "250"),
        ("routing.stream_tail_grace_ms", "1500"),
        ("routing.deadline_ms", "120000"),
        ("limits.max_concurrent_requests", "256"),
        ("limits.max_queue", "1024"),
        ("limits.per_client_burst", "0"),
        ("log.level", "info"),
    ] {
        config = config.set(key, value);
    }
    for n in 2..routes {
        config = config.route("fast", &format!("spare-{n}"), n as i64 + 1);
    }
    if let Some(url) = database {
        config = config.on_database(url);
    }
    config
        .start_process(&binary.display().to_string(), dir)
        .await
}
