//! The typed settings tree, with the defaults of DESIGN.md §11.

use super::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub limits: LimitSettings,
    pub routing: RoutingSettings,
    pub quota: QuotaSettings,
    pub auth: AuthSettings,
    pub catalog: CatalogSettings,
    pub maintainer: MaintainerSettings,
    pub log: LogSettings,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// The gateway's listen address.
    pub listen: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long in-flight requests may finish after shutdown starts.
    pub shutdown_grace_s: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub database: PathBuf,
    pub busy_timeout_ms: u64,
    /// How often the request-log writer flushes a batch.
    pub log_flush_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_concurrent_requests: usize,
    /// Seconds a request may wait in the queue for a slot (fractions allowed).
    pub queue_timeout_s: f64,
    pub max_queue: usize,
    /// Per-client limit (by client key, else IP): burst size; 0 turns the limit off.
    pub per_client_burst: u32,
    /// Per-client limit: sustained requests per second.
    pub per_client_per_second: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// Upstream attempts one client request may spend.
    pub attempt_budget: u32,
    /// Overall deadline of one client request.
    pub deadline_ms: u64,
    pub connect_timeout_ms: u64,
    /// No response headers within this ⇒ next route, never this one again in the request.
    pub header_timeout_ms: u64,
    /// Headers but no first token within this ⇒ next route.
    pub first_token_timeout_ms: u64,
    /// A committed stream silent this long is rescued.
    pub stream_idle_timeout_ms: u64,
    /// A 429 whose reset is at most this far is waited for, then the same route retried once.
    pub near_reset_ms: u64,
    /// Jittered pause before retrying a 5xx or a reset on the same route.
    pub retry_pause_ms: u64,
    /// Hint-less 429s tolerated on one route in one request before moving on.
    pub hintless_429_tries: u32,
    /// First cooldown after hint-less 429s; doubles each time, capped by `max_cooldown_ms`.
    pub base_cooldown_ms: u64,
    pub max_cooldown_ms: u64,
    /// Consecutive failures after which a route cools (outage) and then gets half-open probes.
    pub outage_after_failures: u32,
    pub outage_cooldown_ms: u64,
    /// Consecutive timeouts or not-founds before `too_slow` / `potentially_outdated`.
    pub repeated_after: u32,
    /// How long a `too_slow` route stays at the back of the line.
    pub too_slow_ms: u64,
    /// Short cooldown for 402, 413 and empty completions.
    pub short_cooldown_ms: u64,
    /// Largest upstream body held in memory for one request.
    pub max_upstream_body_bytes: usize,
    /// After `finish_reason`, how long to wait for a usage chunk or `[DONE]`.
    pub stream_tail_grace_ms: u64,
}

/// Quota leases (see `freerouter::quota`): how a process takes blocks of a key's windows.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    /// The longest a request waits for a lease from a stalled store (one whose writes have not
    /// moved for this long; a busy one is given up to eight times as long); past it the
    /// stalled-store policy decides (go on unreserved, or skip the key for this request).
    pub reserve_timeout_ms: u64,
    /// How long a lease lives: its unused part goes back to the key when it ends (or at shutdown),
    /// and a crashed process's leases stop counting their uncommitted part this long after.
    pub lease_ttl_ms: u64,
    /// The most requests one lease takes.
    pub max_lease_requests: u64,
    /// How often the process re-reads what each key has used (headroom, gauges, lease sizes).
    pub refresh_ms: u64,
    /// At shutdown, how long to wait for requests in flight to end, and then for the ledger's last
    /// writes, before exiting anyway.
    pub shutdown_wait_ms: u64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    #[serde(default)]
    pub admin_token: Option<Secret>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    /// Seed the built-in default catalog into an empty database.
    pub defaults: bool,
    /// How often the gateway polls the catalog version.
    pub reload_interval_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintainerSettings {
    /// The maintainer's `/health` and `/metrics`.
    pub listen: String,
    /// Apply `remove_route` and `clear_stale` without waiting for a human (`add_route` always waits).
    pub auto_maintenance: bool,
    pub diagnosis_interval_s: f64,
    /// The first diagnosis runs this long after start.
    pub first_run_delay_s: f64,
    pub key_recheck_interval_s: f64,
    pub retention_interval_s: f64,
    pub request_log_retention_days: u64,
    /// Decided suggestions are kept this long.
    pub suggestion_retention_days: u64,
    /// The route asked about unknown prices (route id, upstream id or name); else a `web-search`
    /// route, else the best text route.
    pub supervisor_model: Option<String>,
    /// How long a supervisor verdict is reused.
    pub verdict_ttl_s: u64,
    /// A listing or a one-token probe gets this long.
    pub probe_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub json: bool,
}

/// Free-tier limits; all optional. On a provider they apply per key across its models,
/// on a route per key for that model only.
#[derive(Clone, Copy, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub rpd: Option<u64>,
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
}

/// A provider of the user's own, or an override of a built-in one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub base_url: Option<String>,
    /// Adapter to use; `openai` (OpenAI-compatible) for providers of the user's own.
    pub adapter: Option<String>,
    /// Environment variable(s) holding the keys (comma-separated values allowed).
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    pub limits: Option<Limits>,
    pub day_reset: Option<String>,
    /// Headers-to-first-token limit for slow reasoning models on this provider.
    pub first_token_timeout_ms: Option<u64>,
}

/// A route declared in the config file (origin `manual`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    pub provider: String,
    pub model: String,
    pub display_name: Option<String>,
    pub rank: Option<i64>,
    pub context_window: Option<u64>,
    pub max_output: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub limits: Option<Limits>,
    pub enabled: Option<bool>,
}

/// The built-in defaults as TOML, the lowest configuration layer.
pub const DEFAULTS_TOML: &str = r#"
[server]
listen = "127.0.0.1:8000"
max_body_bytes = 4194304
shutdown_grace_s = 20

[storage]
database = "./data/freerouter.db"
busy_timeout_ms = 5000
log_flush_ms = 250

[limits]
max_concurrent_requests = 20
queue_timeout_s = 30.0
max_queue = 200
per_client_burst = 120
per_client_per_second = 20

[routing]
attempt_budget = 8
deadline_ms = 120000
connect_timeout_ms = 5000
header_timeout_ms = 30000
first_token_timeout_ms = 10000
stream_idle_timeout_ms = 10000
near_reset_ms = 3000
retry_pause_ms = 250
hintless_429_tries = 3
base_cooldown_ms = 10000
max_cooldown_ms = 600000
outage_after_failures = 3
outage_cooldown_ms = 15000
repeated_after = 3
too_slow_ms = 300000
short_cooldown_ms = 30000
max_upstream_body_bytes = 16777216
stream_tail_grace_ms = 1500

[quota]
reserve_timeout_ms = 1000
lease_ttl_ms = 5000
max_lease_requests = 256
refresh_ms = 1000
shutdown_wait_ms = 5000

[auth]

[catalog]
defaults = true
reload_interval_ms = 1000

[maintainer]
listen = "127.0.0.1:9091"
auto_maintenance = true
diagnosis_interval_s = 21600.0
first_run_delay_s = 30.0
key_recheck_interval_s = 1800.0
retention_interval_s = 86400.0
request_log_retention_days = 30
suggestion_retention_days = 90
verdict_ttl_s = 604800
probe_timeout_ms = 20000

[log]
level = "info"
json = false
"#;
