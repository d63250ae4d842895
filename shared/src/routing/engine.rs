//! The routing engine: plans a request, calls upstreams through their adapters, falls back,
//! and records what happened (health, request log, metrics).

use super::attempts::{Attempts, Context, Target};
use super::chunk::{Usage, completion_has_answer};
use super::error::RoutingError;
use super::plan::{PlanInput, plan};
use super::request::ChatRequest;
use super::trail::Trail;
use crate::catalog::live::LiveCatalog;
use crate::config::RoutingSettings;
use crate::health::HealthBoard;
use crate::metrics as m;
use crate::providers::{
    FailureKind, ProviderAdapter, RateLimitInfo, UpstreamCall, UpstreamFailure, UpstreamReply,
    adapter_for,
};
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
    pub request_id: String,
    /// A low-cardinality name of the HTTP endpoint, for metrics and the log.
    pub endpoint: &'static str,
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
    pub settings: RoutingSettings,
    http: reqwest::Client,
    adapters: HashMap<String, Arc<dyn ProviderAdapter>>,
}

impl Engine {
    pub fn new(
        catalog: Arc<LiveCatalog>,
        health: Arc<HealthBoard>,
        writer: StoreWriter,
        settings: RoutingSettings,
        http: reqwest::Client,
    ) -> Self {
        let adapters = catalog
            .snapshot()
            .providers
            .values()
            .filter_map(|p| adapter_for(&p.adapter).map(|a| (p.adapter.clone(), a)))
            .collect();
        Self {
            catalog,
            health,
            writer,
            settings,
            http,
            adapters,
        }
    }

    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            health: &self.health,
            writer: &self.writer,
            settings: &self.settings,
        }
    }

    /// Plans the request: candidates in order, or why there are none.
    pub(crate) fn start(&self, request: &RouteRequest) -> Result<Attempts, RoutingError> {
        let snapshot = self.catalog.snapshot();
        let prompt_tokens = request.chat.estimated_prompt_tokens();
        let input = PlanInput {
            model: &request.chat.model,
            strict: request.strict,
            prompt_tokens,
            max_tokens: request.chat.max_tokens,
        };
        let plan = plan(&snapshot, &self.health, &input, now_ms())?;
        Ok(Attempts::new(
            plan.candidates,
            &self.settings,
            prompt_tokens + request.chat.max_tokens.unwrap_or(0),
            request.received,
        ))
    }

    /// One upstream call, bounded by the header timeout and the request's deadline.
    pub(crate) async fn call(
        &self,
        target: &Target,
        body: serde_json::Value,
        stream: bool,
        deadline: Instant,
    ) -> Result<UpstreamReply, UpstreamFailure> {
        let provider = &target.candidate.provider;
        let Some(adapter) = self.adapters.get(&provider.adapter) else {
            return Err(UpstreamFailure::new(
                FailureKind::Connect,
                "no adapter for this provider",
            ));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let call = UpstreamCall {
            provider,
            key: target.key.as_ref(),
            body,
            stream,
            header_timeout: left.min(Duration::from_millis(self.settings.header_timeout_ms)),
            idle_timeout: left.min(Duration::from_millis(self.settings.stream_idle_timeout_ms)),
            max_body_bytes: self.settings.max_upstream_body_bytes,
            now: now_ms(),
        };
        adapter.chat(&self.http, call).await
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
            let body = request
                .chat
                .upstream_body(&target.candidate.route.upstream_model);
            let sent = Instant::now();
            let failure = match self.call(&target, body, false, attempts.deadline).await {
                Ok(UpstreamReply::Complete { body, json, rate })
                    if completion_has_answer(&json) =>
                {
                    attempts.succeeded(&target);
                    self.after_success(&target, &rate, sent.elapsed());
                    let usage = json.get("usage").and_then(Usage::from_json);
                    let served = Served {
                        route_id: target.route_id().to_string(),
                        provider: target.provider().to_string(),
                        model: json
                            .get("model")
                            .and_then(|m| m.as_str())
                            .unwrap_or(&target.candidate.route.upstream_model)
                            .to_string(),
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
    pub(crate) fn after_success(
        &self,
        target: &Target,
        rate: &RateLimitInfo,
        time_to_answer: Duration,
    ) {
        let now = now_ms();
        if let Some(change) = self.health.record_success(target.route_id(), now) {
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
            let change = self.health.cool_key(
                target.provider(),
                target.key_id(),
                target.route_id(),
                now + wait as EpochMs,
                "quota_headers_zero",
            );
            self.writer.health(change);
        }
        self.writer.send(StoreWrite::RateHint(RateLimitHint {
            provider: target.provider().to_string(),
            key_id: target.key_id().to_string(),
            scope: target.route_id().to_string(),
            remaining_requests: rate.remaining_requests,
            remaining_tokens: rate.remaining_tokens,
            reset_at_ms: rate
                .reset_requests_ms
                .or(rate.reset_tokens_ms)
                .map(|ms| now + ms as EpochMs),
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
        RoutingError::QuotaExhausted { .. } => 429,
        RoutingError::AllRoutesFailed { .. } => 502,
        RoutingError::UpstreamRejected { status, .. } => *status,
    }
}
