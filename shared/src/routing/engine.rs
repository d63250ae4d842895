//! The routing engine: plans a request, calls upstreams through their adapters, falls back,
//! and records what happened (health, request log, metrics).

use super::attempts::{Attempts, Context, Target};
use super::chunk::Usage;
use super::error::RoutingError;
use super::fields::FieldPolicy;
use super::modes::{self, Mode};
use super::plan::{PlanInput, plan};
use super::request::ChatRequest;
use super::sessions::{SessionKey, StickySessions};
use super::stats::RouteStats;
use super::trail::Trail;
use crate::catalog::is_auto_mode;
use crate::catalog::live::LiveCatalog;
use crate::config::RoutingSettings;
use crate::health::HealthBoard;
use crate::metrics as m;
use crate::providers::body::JsonObject;
use crate::providers::{
    FailureKind, ProviderAdapter, RateLimitInfo, UpstreamCall, UpstreamFailure, UpstreamReply,
    adapter_for, send_chat,
};
use crate::quota::window::{DAY_MS, day_window_start};
use crate::quota::{Grant, HeldReservation, Ledger, Reservation, Scope};
use crate::store::{RateLimitHint, RequestLogRow, StoreWrite, StoreWriter};
use crate::time::{EpochMs, now_ms};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One client request as the engine receives it.
#[derive(Clone, Debug)]
pub struct RouteRequest {
    pub chat: ChatRequest,
    /// `X-FreeRouter-Strict: true`: no model but the one named.
    pub strict: bool,
    /// `X-Session-Id`: keeps a conversation on one route.
    pub session_id: Option<String>,
    pub request_id: String,
    /// A low-cardinality name of the HTTP endpoint, for metrics and the log.
    pub endpoint: &'static str,
    /// `/v1/chat/completions/web-search`: only `web-search` routes, asked in each provider's form.
    pub web_search: bool,
    /// `X-FreeRouter-Priority` (or the client key's default).
    pub priority: super::priority::Priority,
    /// `X-FreeRouter-Exclude`: properties no route serving this request may have, besides
    /// `routing.exclude` (`catalog::data_use`).
    pub exclude: Vec<String>,
    pub received: Instant,
}

/// A served non-streaming answer: the upstream's own body.
#[derive(Debug)]
pub struct Completion {
    pub body: Bytes,
    pub served: Served,
}

/// Who served a request, for the `X-Gateway-*` headers.
#[derive(Clone, Debug)]
pub struct Served {
    pub route_id: String,
    pub provider: String,
    /// The model the upstream says answered.
    pub model: String,
    pub trail: Trail,
}

/// The engine and what it shares across requests.
pub struct Engine {
    pub catalog: Arc<LiveCatalog>,
    pub health: Arc<HealthBoard>,
    pub writer: StoreWriter,
    /// The quota ledger every attempt reserves against.
    pub ledger: Ledger,
    pub settings: RoutingSettings,
    /// Measured speed and success per route (`auto-fast`, `auto-balanced`).
    pub stats: RouteStats,
    /// Conversations pinned to the route that served them.
    pub sessions: StickySessions,
    /// Which client fields reach which upstream.
    pub fields: FieldPolicy,
    http: crate::providers::HttpClient,
    adapters: HashMap<String, Arc<dyn ProviderAdapter>>,
}

impl Engine {
    pub fn new(
        catalog: Arc<LiveCatalog>,
        health: Arc<HealthBoard>,
        writer: StoreWriter,
        ledger: Ledger,
        settings: RoutingSettings,
        http: crate::providers::HttpClient,
    ) -> Self {
        let adapters = catalog
            .snapshot()
            .providers
            .values()
            .filter_map(|p| adapter_for(&p.adapter).map(|a| (p.adapter.clone(), a)))
            .collect::<HashMap<_, _>>();
        let fields = FieldPolicy::new(
            &settings.passthrough_fields,
            adapters.values().map(|a| a.as_ref()),
        );
        Self {
            fields,
            catalog,
            health,
            writer,
            ledger,
            settings,
            stats: RouteStats::default(),
            sessions: StickySessions::default(),
            http,
            adapters,
        }
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            health: &self.health,
            writer: &self.writer,
            settings: &self.settings,
            stats: &self.stats,
        }
    }

    /// Plans the request: candidates in order, or why there are none.
    pub(crate) fn start(&self, request: &RouteRequest) -> Result<Attempts, RoutingError> {
        let snapshot = self.catalog.snapshot();
        let prompt_tokens = request.chat.estimated_prompt_tokens();
        let mut required_tags = request.chat.required_tags();
        if request.web_search && !required_tags.contains(&"web-search") {
            required_tags.push("web-search");
        }
        let mut excluded = self.settings.exclude.clone();
        excluded.extend(request.exclude.iter().cloned());
        let input = PlanInput {
            excluded: &excluded,
            required_tags: &required_tags,
            model: &request.chat.model,
            strict: request.strict,
            prompt_tokens,
            max_tokens: request.chat.max_tokens,
        };
        let now = now_ms();
        let mut candidates = plan(&snapshot, &self.health, &input, now)?.candidates;
        let session = SessionKey::of(request.session_id.as_deref(), request.chat.opening);
        if is_auto_mode(&request.chat.model) {
            modes::order(
                &mut candidates,
                Mode::from_model(&request.chat.model),
                &self.stats,
                rand::random::<f64>,
            );
            if let Some(pinned) = session.and_then(|key| self.sessions.pinned(key, now))
                && let Some(at) = candidates.iter().position(|c| c.route.route_id == pinned)
            {
                let sticky = candidates.remove(at);
                candidates.insert(0, sticky);
            }
        }
        let mut attempts = Attempts::new(
            candidates,
            &self.settings,
            prompt_tokens.saturating_add(request.chat.max_tokens.unwrap_or(0)),
            request.received,
        );
        attempts.session = session;
        if request.priority == super::priority::Priority::Low {
            attempts.low_priority_reserve = Some(self.settings.low_priority_reserve);
        }
        Ok(attempts)
    }

    pub(crate) fn adapter(&self, target: &Target) -> Option<&Arc<dyn ProviderAdapter>> {
        self.adapters.get(&target.candidate.provider.adapter)
    }

    /// The HTTP client every upstream call goes through.
    pub(crate) fn http(&self) -> &crate::providers::HttpClient {
        &self.http
    }

    /// The body for one upstream: the client's, with the route's model and, for web search, the
    /// provider's own way of asking for it. `prefill` continues a partial answer.
    pub(crate) fn upstream_body(
        &self,
        target: &Target,
        request: &RouteRequest,
        prefill: Option<&str>,
    ) -> JsonObject {
        let adapter = self.adapter(target).map(|a| a.as_ref());
        let route = &target.candidate.route;
        let reasoning = route.has_tag("reasoning");
        let mut body = request.chat.upstream_body(&route.upstream_model, |name| {
            self.fields.reaches_route(name, adapter, reasoning)
        });
        // More output than the route gives would be refused upstream: ask for what it gives.
        if let Some(clamped) = super::output::clamped_max_tokens(request.chat.max_tokens, route)
            && Some(clamped) != request.chat.max_tokens
        {
            for name in ["max_tokens", "max_completion_tokens"] {
                if body.get(name).is_some() {
                    body.set(name, &serde_json::Value::from(clamped));
                }
            }
        }
        if request.web_search
            && let Some(adapter) = adapter
        {
            adapter.request_web_search(&mut body);
        }
        if let Some(partial) = prefill {
            let message = adapter.map_or_else(
                || serde_json::json!({"role": "assistant", "content": partial}),
                |a| a.prefill_message(partial),
            );
            body.push_to_array("messages", &message);
        }
        body
    }

    /// Tokens one attempt on `target` reserves: the prompt estimate plus the output asked of
    /// that route (`routing::output`).
    pub(crate) fn token_estimate(request: &RouteRequest, target: &Target) -> u64 {
        let output = super::output::reserved_output_tokens(
            request.chat.max_tokens,
            &target.candidate.route,
            &target.candidate.provider,
        );
        request
            .chat
            .estimated_prompt_tokens()
            .saturating_add(output)
    }

    /// Tokens an answered attempt on `target` is charged (`routing::output::charged_tokens`).
    pub(crate) fn charged(target: &Target, used: Option<u64>, estimate: u64) -> u64 {
        super::output::charged_tokens(&target.candidate.provider, used, estimate)
    }

    /// Takes this attempt's quota (from memory; a new lease waits at most
    /// `quota.reserve_timeout_ms`). `Ok(None)`: the route has no limits to keep (or the store
    /// failed: the request goes on rather than fail). `Err(())`: the key has no room, or the store
    /// is stalled and the key too small to go on unreserved; no call is made.
    pub(crate) async fn reserve(
        &self,
        target: &Target,
        tokens: u64,
    ) -> Result<Option<Reservation>, ()> {
        let (provider, route) = (&target.candidate.provider, &target.candidate.route);
        if !Ledger::limited(provider, route) {
            return Ok(None);
        }
        let now = now_ms();
        match self
            .ledger
            .reserve(provider, route, target.key_id(), tokens, now)
            .await
        {
            Ok(Grant::Granted(reservation)) => Ok(Some(reservation)),
            Ok(Grant::TooLargeNow) => Err(()),
            Ok(Grant::Refused { until_ms, scope }) => {
                let route_scope = match scope {
                    Scope::Key => "*",
                    Scope::Route => target.route_id(),
                };
                let change = self.health.rest_key_for_quota(
                    target.provider(),
                    target.key_id(),
                    route_scope,
                    until_ms,
                );
                self.writer.health(change);
                metrics::counter!(m::QUOTA_REFUSALS_TOTAL, "provider" => target.provider().to_string())
                    .increment(1);
                Err(())
            }
            Ok(Grant::Stalled { retry_at_ms }) => {
                // This process's own business: the key rests here, nothing is written for others.
                let _ = self.health.cool_key(
                    target.provider(),
                    target.key_id(),
                    target.route_id(),
                    retry_at_ms,
                    "store_stalled",
                    now,
                );
                Err(())
            }
            Err(error) => {
                tracing::warn!(%error, "quota reservation failed; going on without one");
                Ok(None)
            }
        }
    }

    /// Settles a reservation with the real usage (in memory; the store is written off the path).
    pub(crate) fn settle(&self, reservation: Option<Reservation>, tokens: u64) {
        if let Some(reservation) = reservation {
            self.ledger.settle(reservation, tokens, now_ms());
        }
    }

    /// Ends a reservation after a failure: given back when the provider cannot have counted the
    /// request, kept at its estimate when it may have (a timeout, a broken stream).
    pub(crate) fn release_after(
        &self,
        reservation: Option<Reservation>,
        kind: FailureKind,
        estimate: u64,
    ) {
        let Some(reservation) = reservation else {
            return;
        };
        let may_have_counted = matches!(
            kind,
            FailureKind::HeaderTimeout
                | FailureKind::FirstTokenTimeout
                | FailureKind::StreamIdle
                | FailureKind::Reset
                | FailureKind::Server
        );
        if may_have_counted {
            return self.settle(Some(reservation), estimate);
        }
        self.ledger.release(reservation, now_ms());
    }

    /// Puts the route's key with the most headroom first, when it has several (headroom as this
    /// process last saw it: no store read). Returns whether the order changed (the target then
    /// names another key).
    pub(crate) async fn order_keys(&self, attempts: &mut Attempts, target: &Target) -> bool {
        let (provider, route) = (&target.candidate.provider, &target.candidate.route);
        let keys = attempts.fresh_route_keys();
        if keys.len() < 2 || !Ledger::limited(provider, route) {
            return false;
        }
        let now = now_ms();
        let mut best: Option<(usize, f64)> = None;
        for (index, key_id) in keys.iter().enumerate() {
            let room = self.ledger.headroom(provider, route, key_id, now);
            if best.is_none_or(|(_, b)| room > b) {
                best = Some((index, room));
            }
        }
        match best {
            Some((index, _)) if index > 0 => {
                attempts.prefer_key(index);
                true
            }
            _ => false,
        }
    }

    /// Readies an attempt on `target`: keys in headroom order, quota reserved. `None` when this
    /// target is not to be called (the caller asks the driver for the next one).
    pub(crate) async fn prepare_attempt(
        &self,
        attempts: &mut Attempts,
        target: &Target,
        estimate: u64,
    ) -> Option<HeldReservation> {
        if self.order_keys(attempts, target).await {
            return None;
        }
        if let Some(reserve) = attempts.low_priority_reserve {
            let (provider, route) = (&target.candidate.provider, &target.candidate.route);
            let now = now_ms();
            let left = self
                .ledger
                .day_share_left(provider, route, target.key_id(), now);
            if super::priority::held_back(super::priority::Priority::Low, left, reserve) {
                let day_turns = day_window_start(now, provider.day_reset_minute) + DAY_MS;
                attempts.held_back(&provider.name, day_turns);
                return None;
            }
        }
        match self.reserve(target, estimate).await {
            Ok(reservation) => Some(HeldReservation::new(&self.ledger, reservation)),
            Err(()) => {
                attempts.quota_refused();
                None
            }
        }
    }

    /// One upstream call, bounded by the header timeout and the request's deadline (a non-streamed
    /// body still trickling in at the deadline is given up: every piece within the idle timeout is
    /// not enough).
    pub(crate) async fn call(
        &self,
        target: &Target,
        body: JsonObject,
        stream: bool,
        deadline: Instant,
    ) -> Result<UpstreamReply, UpstreamFailure> {
        let provider = &target.candidate.provider;
        let Some(adapter) = self.adapter(target) else {
            return Err(UpstreamFailure::new(
                FailureKind::Connect,
                "no adapter for this provider",
            ));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // A stream's headers come at once; a whole answer's come with the answer.
        let header_timeout = if stream {
            self.settings.stream_header_timeout_ms
        } else {
            self.settings.header_timeout_ms
        };
        let call = UpstreamCall {
            provider,
            key: target.key.as_ref(),
            body,
            stream,
            header_timeout: left.min(Duration::from_millis(header_timeout)),
            idle_timeout: left.min(Duration::from_millis(self.settings.stream_idle_timeout_ms)),
            max_body_bytes: self.settings.max_upstream_body_bytes,
            now: now_ms(),
        };
        match tokio::time::timeout(left, send_chat(adapter.as_ref(), &self.http, call)).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamFailure::new(
                FailureKind::StreamIdle,
                "the answer was not whole by the deadline",
            )),
        }
    }

    /// Serves a non-streaming request.
    pub async fn complete(&self, request: &RouteRequest) -> Result<Completion, RoutingError> {
        let result = self.complete_inner(request).await;
        let (status, served, usage) = match &result {
            Ok((completion, usage)) => (200, Some(&completion.served), *usage),
            Err(e) => (error_status(e), None, None),
        };
        let trail = match &result {
            Ok((c, _)) => Some(&c.served.trail),
            Err(e) => e.trail(),
        };
        self.record(
            request,
            status,
            served,
            trail,
            result.as_ref().err(),
            usage,
            None,
        );
        result.map(|(completion, _)| completion)
    }

    async fn complete_inner(
        &self,
        request: &RouteRequest,
    ) -> Result<(Completion, Option<Usage>), RoutingError> {
        let mut attempts = self.start(request)?;
        while let Some(target) = attempts.next_target(&self.health, now_ms()) {
            let estimate = Self::token_estimate(request, &target);
            let Some(mut reservation) =
                self.prepare_attempt(&mut attempts, &target, estimate).await
            else {
                continue;
            };
            let body = self.upstream_body(&target, request, None);
            let sent = Instant::now();
            let failure = match self.call(&target, body, false, attempts.deadline).await {
                Ok(UpstreamReply::Complete { body, info, rate }) if info.has_answer => {
                    attempts.succeeded(&target);
                    self.after_success(&target, attempts.session, &rate, sent.elapsed())
                        .await;
                    let usage = info.usage;
                    let used = usage.map(|u| u.total());
                    self.settle(reservation.take(), Self::charged(&target, used, estimate));
                    let served = Served {
                        route_id: target.route_id().to_string(),
                        provider: target.provider().to_string(),
                        model: info
                            .model
                            .unwrap_or_else(|| target.candidate.route.upstream_model.clone()),
                        trail: attempts.trail.clone(),
                    };
                    return Ok((Completion { body, served }, usage));
                }
                Ok(UpstreamReply::Complete { rate, .. }) => UpstreamFailure {
                    rate,
                    ..UpstreamFailure::new(
                        FailureKind::EmptyCompletion,
                        "the upstream answered nothing",
                    )
                },
                Ok(UpstreamReply::Stream { .. }) => UpstreamFailure::new(
                    FailureKind::Malformed,
                    "a stream where a JSON answer was asked for",
                ),
                Err(failure) => failure,
            };
            self.release_after(reservation.take(), failure.kind, estimate);
            if let Some(wait) =
                attempts.failed(&target, &failure, &self.context(), now_ms(), false)?
            {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
        Err(attempts.into_error(&self.health, now_ms()))
    }

    /// After an answer: the route is healthy again; what the provider said about quota is kept,
    /// and a key the provider says is spent rests until its reset.
    pub(crate) async fn after_success(
        &self,
        target: &Target,
        session: Option<SessionKey>,
        rate: &RateLimitInfo,
        time_to_answer: Duration,
    ) {
        let now = now_ms();
        self.stats.success(target.route_id(), time_to_answer);
        if let Some(key) = session {
            self.sessions.pin(key, target.route_id(), now);
        }
        if let Some(change) = self.health.record_success(target.route_id(), now) {
            self.writer.health(change);
        }
        if let Some(change) = self.health.key_answered(target.provider(), target.key_id()) {
            self.writer.health(change);
        }
        metrics::histogram!(m::UPSTREAM_TTFT_SECONDS, "provider" => target.provider().to_string())
            .record(time_to_answer.as_secs_f64());
        if rate.is_empty() {
            return;
        }
        if rate.is_exhausted()
            && let Some(wait) = rate.wait_hint_ms(false)
        {
            // The provider says the key is spent until its own reset; the ledger may know it stays
            // spent longer (its minute slides). It rests until the later of the two, so a client
            // told to come back then is not refused again. (As this process last saw the key.)
            let mut until = now + wait as EpochMs;
            let mut on = if rate.whole_key {
                "*".to_string()
            } else {
                target.route_id().to_string()
            };
            let (provider, route) = (&target.candidate.provider, &target.candidate.route);
            if Ledger::limited(provider, route)
                && let Some((room_at, scope)) =
                    self.ledger.room_at(provider, route, target.key_id(), now)
                && room_at > until
            {
                until = room_at;
                if scope == Scope::Key {
                    on = "*".to_string();
                }
            }
            let change = self.health.cool_key(
                target.provider(),
                target.key_id(),
                &on,
                until,
                "quota_headers_zero",
                now,
            );
            self.writer.health(change);
        }
        let reset_at_ms = rate.reset_requests_ms.map(|ms| now + ms as EpochMs);
        self.ledger.observe_hint(
            target.provider(),
            target.key_id(),
            target.route_id(),
            rate.remaining_requests,
            reset_at_ms,
        );
        self.writer.send(StoreWrite::RateHint(RateLimitHint {
            provider: target.provider().to_string(),
            key_id: target.key_id().to_string(),
            scope: target.route_id().to_string(),
            remaining_requests: rate.remaining_requests,
            remaining_tokens: rate.remaining_tokens,
            reset_at_ms,
            observed_ms: now,
        }));
    }

    /// Records the end of a client request: metrics and a request-log row (written off the hot path).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        request: &RouteRequest,
        status: u16,
        served: Option<&Served>,
        trail: Option<&Trail>,
        error: Option<&RoutingError>,
        usage: Option<Usage>,
        ttft: Option<Duration>,
    ) {
        let outcome = error.map_or("ok", RoutingError::kind);
        record_request(
            &self.writer,
            RequestRecord {
                request_id: &request.request_id,
                endpoint: request.endpoint,
                requested_model: &request.chat.model,
                stream: request.chat.stream,
                received: request.received,
                status,
                outcome,
                served,
                trail,
                usage,
                ttft,
            },
        );
    }
}

/// The end of a client request, as metrics and the request log see it.
pub struct RequestRecord<'a> {
    pub request_id: &'a str,
    pub endpoint: &'static str,
    pub requested_model: &'a str,
    pub stream: bool,
    pub received: Instant,
    pub status: u16,
    pub outcome: &'static str,
    pub served: Option<&'a Served>,
    pub trail: Option<&'a Trail>,
    pub usage: Option<Usage>,
    pub ttft: Option<Duration>,
}

/// Counts the request and queues its log row; also used by the HTTP face for requests refused before routing.
pub fn record_request(writer: &StoreWriter, r: RequestRecord<'_>) {
    let elapsed = r.received.elapsed();
    metrics::counter!(m::REQUESTS_TOTAL, "endpoint" => r.endpoint, "outcome" => r.outcome)
        .increment(1);
    metrics::histogram!(m::REQUEST_DURATION_SECONDS, "endpoint" => r.endpoint, "outcome" => r.outcome)
        .record(elapsed.as_secs_f64());
    if let (Some(served), Some(usage)) = (r.served, r.usage) {
        metrics::counter!(m::TOKENS_TOTAL, "provider" => served.provider.clone(), "kind" => "prompt")
            .increment(usage.prompt_tokens);
        metrics::counter!(m::TOKENS_TOTAL, "provider" => served.provider.clone(), "kind" => "completion")
            .increment(usage.completion_tokens);
    }
    writer.send(StoreWrite::Log(RequestLogRow {
        request_id: r.request_id.to_string(),
        at_ms: now_ms(),
        endpoint: r.endpoint.to_string(),
        requested_model: r.requested_model.chars().take(200).collect(),
        route_id: r.served.map(|s| s.route_id.clone()),
        provider: r.served.map(|s| s.provider.clone()),
        attempts: r.trail.map_or(0, |t| t.attempts() as u32),
        status: r.status,
        outcome: r.outcome.to_string(),
        error_class: (r.outcome != "ok").then(|| r.outcome.to_string()),
        latency_ms: elapsed.as_millis() as u64,
        ttft_ms: r.ttft.map(|d| d.as_millis() as u64),
        tokens_in: r.usage.map(|u| u.prompt_tokens),
        tokens_out: r.usage.map(|u| u.completion_tokens),
        stream: r.stream,
        trail: r.trail.map(Trail::header_value).unwrap_or_default(),
    }));
}

/// The HTTP status a routing error maps to (DESIGN.md §5).
pub fn error_status(error: &RoutingError) -> u16 {
    match error {
        RoutingError::InvalidRequest(_) => 400,
        RoutingError::NoRoutesAvailable { .. } => 503,
        RoutingError::ModelNotFound { .. } => 404,
        RoutingError::ContextLengthExceeded { .. } => 400,
        RoutingError::NoCapableRoute { .. } => 400,
        RoutingError::QuotaExhausted { .. } => 429,
        RoutingError::AllRoutesFailed { .. } => 502,
        RoutingError::UpstreamRejected { status, .. } => *status,
    }
}
