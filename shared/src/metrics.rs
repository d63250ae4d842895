//! Metric names and their help texts: the one list the code, the dashboard and the tests agree on.
//!
//! Labels stay low-cardinality: endpoint, outcome, provider, route, reason — never a key, a prompt
//! or a client address.

use metrics::{describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const REQUESTS_TOTAL: &str = "freerouter_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "freerouter_request_duration_seconds";
pub const UPSTREAM_ATTEMPTS_TOTAL: &str = "freerouter_upstream_attempts_total";
pub const UPSTREAM_TTFT_SECONDS: &str = "freerouter_upstream_time_to_first_token_seconds";
pub const FALLBACKS_TOTAL: &str = "freerouter_fallbacks_total";
pub const TOKENS_TOTAL: &str = "freerouter_tokens_total";
pub const IN_FLIGHT: &str = "freerouter_requests_in_flight";
pub const QUEUED: &str = "freerouter_requests_queued";
pub const QUEUE_TIMEOUTS_TOTAL: &str = "freerouter_queue_timeouts_total";
pub const CLIENT_RATE_LIMITED_TOTAL: &str = "freerouter_client_rate_limited_total";
pub const CONNECTIONS_OPEN: &str = "freerouter_connections_open";
pub const CONNECTIONS_REFUSED_TOTAL: &str = "freerouter_connections_refused_total";
pub const AUTH_FAILURES_TOTAL: &str = "freerouter_auth_failures_total";
pub const AUTH_THROTTLED_TOTAL: &str = "freerouter_auth_throttled_total";
pub const BROWSER_REFUSALS_TOTAL: &str = "freerouter_browser_refusals_total";
pub const STREAM_RESCUES_TOTAL: &str = "freerouter_stream_rescues_total";
pub const SSE_EVENTS_SKIPPED_TOTAL: &str = "freerouter_sse_events_skipped_total";
pub const ROUTE_ENABLED: &str = "freerouter_route_enabled";
pub const ROUTE_RANK: &str = "freerouter_route_rank";
pub const ROUTE_HEALTH: &str = "freerouter_route_health";
pub const QUOTA_REFUSALS_TOTAL: &str = "freerouter_quota_refusals_total";
pub const QUOTA_UNRESERVED_TOTAL: &str = "freerouter_quota_unreserved_total";
pub const QUOTA_REMAINING: &str = "freerouter_quota_remaining";
pub const QUOTA_LIMIT: &str = "freerouter_quota_limit";
pub const MAINTAINER_RUNS_TOTAL: &str = "freerouter_maintainer_runs_total";
pub const SUGGESTIONS_PENDING: &str = "freerouter_suggestions_pending";
pub const MAINTENANCE_ACTIONS_TOTAL: &str = "freerouter_maintenance_actions_total";
pub const SUPERVISOR_VERDICTS_TOTAL: &str = "freerouter_supervisor_verdicts_total";
pub const CATALOG_RELOADS_TOTAL: &str = "freerouter_catalog_reloads_total";
pub const STORE_WRITE_ERRORS_TOTAL: &str = "freerouter_store_write_errors_total";

/// Bucket bounds (seconds) for the latency histograms.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Registers help text for the maintainer's metrics.
pub fn describe_maintainer() {
    describe_counter!(
        MAINTAINER_RUNS_TOTAL,
        "Maintainer job runs, by job and outcome."
    );
    describe_gauge!(
        SUGGESTIONS_PENDING,
        "Suggestions waiting for a decision, by kind."
    );
    describe_counter!(
        MAINTENANCE_ACTIONS_TOTAL,
        "Suggestions applied by auto-maintenance, by kind."
    );
    describe_counter!(
        SUPERVISOR_VERDICTS_TOTAL,
        "Supervisor pricing verdicts, by verdict (free_high, not_free, unsure, unparsable, failed)."
    );
}

/// Registers help text for every metric (promtool insists on it).
pub fn describe() {
    // One list for both programs: the gateway can run diagnosis too (the admin API's refresh).
    describe_maintainer();
    describe_counter!(REQUESTS_TOTAL, "Client requests by endpoint and outcome.");
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Client request duration, by endpoint and outcome."
    );
    describe_counter!(
        UPSTREAM_ATTEMPTS_TOTAL,
        "Upstream attempts by provider, route and result."
    );
    describe_histogram!(
        UPSTREAM_TTFT_SECONDS,
        metrics::Unit::Seconds,
        "Upstream time to first token (streams) or to the answer, by provider."
    );
    describe_counter!(FALLBACKS_TOTAL, "Moves to another route, by reason.");
    describe_counter!(
        TOKENS_TOTAL,
        "Tokens by provider and kind (prompt, completion)."
    );
    describe_gauge!(IN_FLIGHT, "Requests holding a concurrency slot.");
    describe_gauge!(QUEUED, "Requests waiting for a concurrency slot.");
    describe_counter!(
        QUEUE_TIMEOUTS_TOTAL,
        "Requests refused because the queue was full or the wait too long."
    );
    describe_counter!(
        CLIENT_RATE_LIMITED_TOTAL,
        "Requests refused by the per-client rate limit."
    );
    describe_gauge!(CONNECTIONS_OPEN, "Client connections open.");
    describe_counter!(
        CONNECTIONS_REFUSED_TOTAL,
        "Client connections refused at server.max_connections."
    );
    describe_counter!(
        AUTH_FAILURES_TOTAL,
        "Failed admin-credential checks (admin token, metrics token, console sign-in)."
    );
    describe_counter!(
        AUTH_THROTTLED_TOTAL,
        "Credential checks refused with 429 after too many failures."
    );
    describe_counter!(
        BROWSER_REFUSALS_TOTAL,
        "Requests refused at the perimeter, by reason (host, origin, content_type)."
    );
    describe_counter!(
        STREAM_RESCUES_TOTAL,
        "Committed streams cut or stalled upstream, by how they ended (continued, failed)."
    );
    describe_counter!(
        SSE_EVENTS_SKIPPED_TOTAL,
        "Unparseable upstream SSE events skipped, by provider."
    );
    describe_gauge!(ROUTE_ENABLED, "1 when the route is enabled, by route.");
    describe_gauge!(ROUTE_RANK, "The route's rank (1 is tried first), by route.");
    describe_gauge!(
        ROUTE_HEALTH,
        "1 for the route's current health state, by route and state."
    );
    describe_counter!(
        QUOTA_REFUSALS_TOTAL,
        "Attempts not sent because the key had no quota left, by provider."
    );
    describe_counter!(
        QUOTA_UNRESERVED_TOTAL,
        "Attempts the store did not answer for in time, by provider and outcome (sent unreserved, skipped)."
    );
    describe_gauge!(
        QUOTA_REMAINING,
        "What a key has left of a provider-wide limit, by provider, key fingerprint and window."
    );
    describe_gauge!(
        QUOTA_LIMIT,
        "A provider-wide limit per key, by provider, key fingerprint and window."
    );
    describe_counter!(
        CATALOG_RELOADS_TOTAL,
        "Catalog snapshots reloaded from the database."
    );
    describe_counter!(
        STORE_WRITE_ERRORS_TOTAL,
        "Background writes to the database that failed, by kind."
    );
}

/// Makes the gateway's always-present series exist from the start (dashboards see zeros, not gaps).
pub fn register_gateway_series() {
    metrics::gauge!(IN_FLIGHT).increment(0.0);
    metrics::gauge!(QUEUED).increment(0.0);
    for reason in ["queue_full", "waited_too_long"] {
        metrics::counter!(QUEUE_TIMEOUTS_TOTAL, "reason" => reason).increment(0);
    }
    metrics::counter!(CLIENT_RATE_LIMITED_TOTAL).increment(0);
    metrics::gauge!(CONNECTIONS_OPEN).increment(0.0);
    metrics::counter!(CONNECTIONS_REFUSED_TOTAL).increment(0);
    metrics::counter!(AUTH_FAILURES_TOTAL).increment(0);
    metrics::counter!(AUTH_THROTTLED_TOTAL).increment(0);
    for reason in ["host", "origin", "content_type"] {
        metrics::counter!(BROWSER_REFUSALS_TOTAL, "reason" => reason).increment(0);
    }
}

/// The process's Prometheus recorder, installed once (tests start many gateways and maintainers in
/// one process): latency histograms get [`LATENCY_BUCKETS`], every metric its help text.
pub fn recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
}
