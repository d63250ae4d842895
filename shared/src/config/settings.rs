//! The typed settings tree, with the defaults of DESIGN.md §11.

use super::secret::{Secret, secret_list};
use serde::Deserialize;
use std::collections::BTreeMap;

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
    pub anthropic: AnthropicSettings,
    pub demo: DemoSettings,
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
    /// A client must send a request's whole header within this; an idle keep-alive connection is
    /// closed after it too (it is waiting for the next header).
    pub header_read_timeout_ms: u64,
    /// A request body must arrive whole within this, else 408 (a chat request's clock starts once
    /// it has its concurrency slot).
    pub body_read_timeout_ms: u64,
    /// Open client connections at most; one more is answered 503 at once and closed.
    pub max_connections: usize,
    /// Threads serving requests; 0 picks [`ServerSettings::runtime_workers`]' default.
    pub worker_threads: usize,
    /// `Host` names the gateway answers to besides localhost, IP literals and the listen address
    /// (a foreign name is DNS rebinding: 421). `"*"` allows any.
    #[serde(default, deserialize_with = "string_list")]
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`http://localhost:3000`) allowed to call the gateway besides its own
    /// pages; any other `Origin` is refused (403). `"*"` allows any.
    #[serde(default, deserialize_with = "string_list")]
    pub allowed_origins: Vec<String>,
}

impl ServerSettings {
    /// How many threads serve requests on a machine with `cores` cores: the owner's number, else
    /// half the cores, at least one. The request path waits on the network, not on the CPU: one
    /// thread served ~17,000 requests a second on a 2-core machine, far beyond what free tiers
    /// allow, and spent ~15 % less CPU per request than two (no wake-ups and work stealing
    /// between threads); the other cores are left to the store's threads, the maintainer and
    /// whatever else the owner's machine runs (often a local model).
    pub fn runtime_workers(&self, cores: usize) -> usize {
        match self.worker_threads {
            0 => (cores / 2).max(1),
            n => n,
        }
    }
}

/// A list of strings, or one comma-separated string (the environment's single value).
fn string_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<String>),
        One(String),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::Many(items) => items,
        OneOrMany::One(one) => one
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// A SQLite file (the default) or a `postgres://` URL shared by several hosts.
    pub database: crate::store::Database,
    pub busy_timeout_ms: u64,
    /// How often the request-log writer flushes a batch.
    pub log_flush_ms: u64,
    /// How long a `/v1/responses` answer asked to be stored (`store: true`) is kept for a
    /// follow-up's `previous_response_id`; 0 (the default) stores nothing and refuses both, since
    /// storing every prompt and answer is a choice the owner makes, not a default.
    pub responses_retention_hours: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_concurrent_requests: usize,
    /// Committed streams open at once; beyond, a stream request gets 429 `too_many_streams`.
    pub max_open_streams: usize,
    /// Seconds a request may wait in the queue for a slot (fractions allowed).
    pub queue_timeout_s: f64,
    pub max_queue: usize,
    /// Per-client limit (by the matched client key, else the peer address): burst size; 0 turns
    /// the limit off. Unset, [`DEFAULT_PER_CLIENT_BURST`] applies to clients beyond loopback only;
    /// set (this or the rate), it applies to every client, loopback too.
    pub per_client_burst: Option<u32>,
    /// Per-client limit: sustained requests per second (unset: [`DEFAULT_PER_CLIENT_PER_SECOND`]).
    pub per_client_per_second: Option<u32>,
}

/// The per-client burst when `limits.per_client_burst` is not set.
pub const DEFAULT_PER_CLIENT_BURST: u32 = 120;
/// The per-client rate when `limits.per_client_per_second` is not set.
pub const DEFAULT_PER_CLIENT_PER_SECOND: u32 = 20;

/// The per-client limit in force, settings and defaults resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerClientLimit {
    pub burst: u32,
    pub per_second: u32,
    /// Whether clients on loopback (the owner's own agents) are limited too.
    pub loopback_too: bool,
}

impl LimitSettings {
    /// The per-client limit, or `None` when it is off.
    pub fn per_client(&self) -> Option<PerClientLimit> {
        let limit = PerClientLimit {
            burst: self.per_client_burst.unwrap_or(DEFAULT_PER_CLIENT_BURST),
            per_second: self
                .per_client_per_second
                .unwrap_or(DEFAULT_PER_CLIENT_PER_SECOND),
            loopback_too: self.per_client_burst.is_some() || self.per_client_per_second.is_some(),
        };
        (limit.burst > 0 && limit.per_second > 0).then_some(limit)
    }
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
    /// The same for a streamed request: providers send a stream's headers at once, so silence
    /// is noticed sooner (a careful client gives up after about 10 s).
    pub stream_header_timeout_ms: u64,
    /// Headers but no first token within this ⇒ next route.
    pub first_token_timeout_ms: u64,
    /// A committed stream silent this long is rescued.
    pub stream_idle_timeout_ms: u64,
    /// A committed stream ends by this long after its request arrived, however well it flows.
    pub stream_total_timeout_ms: u64,
    /// A client that takes no chunk of its stream for this long is dropped (its quota settled).
    pub stream_send_timeout_ms: u64,
    /// A 429 whose reset is at most this far is waited for, then the same route retried once.
    pub near_reset_ms: u64,
    /// Jittered pause before retrying a 5xx or a reset on the same route.
    pub retry_pause_ms: u64,
    /// Hint-less 429s tolerated on one route in one request before moving on.
    pub hintless_429_tries: u32,
    /// First cooldown after hint-less 429s; doubles each time, capped by `max_cooldown_ms`.
    pub base_cooldown_ms: u64,
    /// The cap of that escalation.
    pub max_cooldown_ms: u64,
    /// No cooldown of any kind lasts longer, whatever a reset header says (long enough for a
    /// provider's daily reset).
    pub max_cooldown_s: u64,
    /// A route marked `potentially_outdated`, or a key marked invalid, is tried again after this
    /// long (doubling on each repeat, up to `max_cooldown_s`), so a lone gateway recovers by itself.
    pub reprobe_after_ms: u64,
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
    /// Client request fields sent upstream beyond OpenAI's chat fields and what each adapter
    /// declares (see `routing::fields`): provider routing and billing fields are dropped unless named.
    #[serde(default, deserialize_with = "string_list")]
    pub passthrough_fields: Vec<String>,
    /// The embedding model `/v1/embeddings` serves for `auto` (or no model): a route id, alias or
    /// upstream id of an `embeddings` route. Unset, it is the best-ranked enabled embeddings
    /// route's model, which a re-rank or a new key can change: set it once vectors are stored,
    /// since another model's vectors do not match them.
    #[serde(default)]
    pub default_embedding_model: Option<String>,
    /// Low-priority requests (`X-FreeRouter-Priority: low`, or a key of
    /// `auth.low_priority_keys`) stay off a key's route once its daily request window has less
    /// than this share of its limit left (0.2 = the last 20 % of RPD is kept for the rest).
    pub low_priority_reserve: f64,
    /// Routes no request is sent to: `trains-on-prompts` (routes whose provider's terms, or whose
    /// own tag, say prompts may be used for training), or any route tag. A request adds its own
    /// with `X-FreeRouter-Exclude`.
    #[serde(default, deserialize_with = "string_list")]
    pub exclude: Vec<String>,
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
    /// The most requests one lease takes. Only keys with room for eight times as many reach it
    /// (a lease is at most an eighth of what the windows have left, shared among holders); for
    /// them it sets how often the store is written: a lease costs about a dozen writes (grant,
    /// commit raises of an eighth, seal, settle), so 256 wrote on every ~20th request at 16,000
    /// req/s and cost ~10 % of the gateway's CPU, 4,096 on every ~400th.
    pub max_lease_requests: u64,
    /// How often the process re-reads what each key has used (headroom, gauges, lease sizes).
    pub refresh_ms: u64,
    /// At shutdown, how long to wait for requests in flight to end, and then for the ledger's last
    /// writes, before exiting anyway.
    pub shutdown_wait_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Client tokens; when set, every `/v1/*` request needs one (the admin API also takes the
    /// admin token).
    #[serde(default, deserialize_with = "secret_list")]
    pub api_keys: Vec<Secret>,
    /// Needed for admin changes over HTTP (admin API mutations, console sign-in).
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// Client keys (each also one of `api_keys`) whose requests are low priority unless they
    /// send `X-FreeRouter-Priority` themselves: batch jobs that should leave the daily reserve
    /// of the strong routes to people (`routing.low_priority_reserve`).
    #[serde(default, deserialize_with = "secret_list")]
    pub low_priority_keys: Vec<Secret>,
    /// When set, `/metrics` needs `Authorization: Bearer <metrics token>`.
    #[serde(default)]
    pub metrics_token: Option<Secret>,
    /// Console pages (not only its changes) need an admin session; needs `admin_token`.
    pub protect_console: bool,
    /// Failed admin-credential checks (admin token, metrics token, console sign-in) one client
    /// may make within `failed_auth_window_ms` before it gets 429 until the window passes.
    pub failed_auth_per_client: u32,
    /// The same across all clients together (a guess spread over many addresses).
    pub failed_auth_total: u32,
    pub failed_auth_window_ms: u64,
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

/// The Messages face (`/v1/messages`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicSettings {
    /// Claude model names to what serves them: a key equal to the requested name wins, else the
    /// longest key a `claude-*` name contains (`haiku` catches `claude-haiku-4-5-20251001`); the
    /// value is an `auto` mode or a route name. An unmapped Claude name is `auto`.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
}

/// Demo mode (`freerouter-gateway --demo`, `FREEROUTER_DEMO=1`): simulated free tiers served
/// in-process, on a database file of their own.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    pub enabled: bool,
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
    /// Requests per calendar month (UTC), e.g. Cohere's 1,000 trial calls.
    pub rpmonth: Option<u64>,
    /// Tokens per calendar month (UTC), e.g. Mistral's free tier.
    pub tpmonth: Option<u64>,
    /// The length of a rolling window, in whole hours (1–744), e.g. Ollama Cloud's 5 hours: what
    /// was sent in the last `window_hours` counts against `rpwindow` and `tpwindow`.
    pub window_hours: Option<u32>,
    /// Requests per rolling window of `window_hours`.
    pub rpwindow: Option<u64>,
    /// Tokens per rolling window of `window_hours`.
    pub tpwindow: Option<u64>,
}

/// The longest rolling window: the one-hour buckets it is summed from are kept 32 days.
pub const MAX_WINDOW_HOURS: u32 = 744;

impl Limits {
    /// What makes these limits unusable, if anything: a rolling window needs its length and a
    /// limit to count against it.
    pub fn problem(&self) -> Option<String> {
        match (self.window_hours, self.rpwindow.or(self.tpwindow)) {
            (Some(hours), _) if !(1..=MAX_WINDOW_HOURS).contains(&hours) => Some(format!(
                "window_hours must be between 1 and {MAX_WINDOW_HOURS} (31 days), got {hours}"
            )),
            (Some(_), None) => {
                Some("window_hours needs rpwindow or tpwindow to count against".into())
            }
            (None, Some(_)) => {
                Some("rpwindow and tpwindow need window_hours, the window's length".into())
            }
            _ => None,
        }
    }
}

/// A provider of the user's own, or an override of a built-in one.
#[derive(Clone, Default, Deserialize)]
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
    /// The provider counts a request's `max_tokens` against its token window before answering
    /// (Cerebras): the gateway reserves it too.
    pub counts_max_tokens: Option<bool>,
    /// The owner's own reading of the provider's terms (an EEA account on Gemini, say),
    /// overriding the catalog's `trains_on_prompts`.
    pub trains_on_prompts: Option<bool>,
    /// The owner's own knowledge of the account: `false` for one still on a built-in's old free
    /// tier, `true` for a provider whose use is a credit that runs out (ranked after free tiers).
    pub trial: Option<bool>,
}

/// By hand, so the base URL prints without the credentials it may hold.
impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field(
                "base_url",
                &self.base_url.as_deref().map(super::redact::redact_url),
            )
            .field("adapter", &self.adapter)
            .field("api_key_env", &self.api_key_env)
            .field("api_keys", &self.api_keys)
            .field("limits", &self.limits)
            .field("day_reset", &self.day_reset)
            .field("first_token_timeout_ms", &self.first_token_timeout_ms)
            .field("counts_max_tokens", &self.counts_max_tokens)
            .field("trains_on_prompts", &self.trains_on_prompts)
            .field("trial", &self.trial)
            .finish()
    }
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
header_read_timeout_ms = 10000
body_read_timeout_ms = 15000
max_connections = 1024
worker_threads = 0

[storage]
database = "./data/freerouter.db"
busy_timeout_ms = 5000
log_flush_ms = 250
responses_retention_hours = 0

[limits]
max_concurrent_requests = 20
max_open_streams = 256
queue_timeout_s = 30.0
max_queue = 200

[routing]
attempt_budget = 8
deadline_ms = 120000
connect_timeout_ms = 5000
header_timeout_ms = 30000
stream_header_timeout_ms = 10000
first_token_timeout_ms = 10000
stream_idle_timeout_ms = 10000
stream_total_timeout_ms = 1800000
stream_send_timeout_ms = 30000
near_reset_ms = 3000
retry_pause_ms = 250
hintless_429_tries = 3
base_cooldown_ms = 10000
max_cooldown_ms = 600000
max_cooldown_s = 93600
reprobe_after_ms = 900000
outage_after_failures = 3
outage_cooldown_ms = 15000
repeated_after = 3
too_slow_ms = 300000
short_cooldown_ms = 30000
max_upstream_body_bytes = 16777216
stream_tail_grace_ms = 1500
low_priority_reserve = 0.2

[quota]
reserve_timeout_ms = 1000
lease_ttl_ms = 5000
max_lease_requests = 4096
refresh_ms = 1000
shutdown_wait_ms = 5000

[auth]
protect_console = false
failed_auth_per_client = 5
failed_auth_total = 30
failed_auth_window_ms = 60000

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

[anthropic]
models = { haiku = "auto-fast" }

[demo]
enabled = false
"#;
