//! The embeddings attempt loop: the model's routes in rank order, each attempt with its quota
//! reserved and settled (with the upstream's `usage`) as for chat, failures judged by the same
//! failure table — and the fallback never leaving the model.

use super::error::EmbeddingsError;
use super::model::{candidates, resolve};
use super::request::EmbeddingsRequest;
use crate::providers::body::JsonObject;
use crate::providers::{
    EmbeddingsReply, FailureKind, UpstreamCall, UpstreamFailure, send_embeddings,
};
use crate::routing::attempts::{Attempts, Target};
use crate::routing::chunk::Usage;
use crate::routing::{Engine, RequestRecord, Served, record_request};
use crate::time::now_ms;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// The label of embeddings requests in metrics and the request log.
pub const ENDPOINT: &str = "embeddings";

/// One client embeddings request as the engine receives it.
#[derive(Clone, Debug)]
pub struct EmbedRequest {
    pub embeddings: EmbeddingsRequest,
    pub request_id: String,
    pub received: Instant,
}

/// A served embeddings answer: the upstream's own body (vectors as numbers).
#[derive(Debug)]
pub struct Embedded {
    pub body: Bytes,
    pub served: Served,
    /// The embedding model the request resolved to (what `auto` meant).
    pub model: String,
}

impl Engine {
    /// Serves an embeddings request and records it (metrics, request log).
    pub async fn embed(&self, request: &EmbedRequest) -> Result<Embedded, EmbeddingsError> {
        let result = self.embed_inner(request).await;
        let (status, outcome) = match &result {
            Ok(_) => (200, "ok"),
            Err(error) => (error.status(), error.kind()),
        };
        let (served, usage) = match &result {
            Ok((embedded, usage)) => (Some(&embedded.served), *usage),
            Err(_) => (None, None),
        };
        let trail = match &result {
            Ok((embedded, _)) => Some(&embedded.served.trail),
            Err(EmbeddingsError::Routing { error, .. }) => error.trail(),
            Err(_) => None,
        };
        record_request(
            &self.writer,
            RequestRecord {
                request_id: &request.request_id,
                endpoint: ENDPOINT,
                requested_model: &request.embeddings.model,
                stream: false,
                received: request.received,
                status,
                outcome,
                served,
                trail,
                usage,
                ttft: None,
            },
        );
        result.map(|(embedded, _)| embedded)
    }

    async fn embed_inner(
        &self,
        request: &EmbedRequest,
    ) -> Result<(Embedded, Option<Usage>), EmbeddingsError> {
        let embeddings = &request.embeddings;
        let snapshot = self.catalog.snapshot();
        let model = resolve(
            &snapshot,
            &embeddings.model,
            self.settings.default_embedding_model.as_deref(),
        )?;
        let ready = candidates(
            &snapshot,
            &self.health,
            &model,
            embeddings.dimensions.is_some(),
            now_ms(),
        )?;
        drop(snapshot);
        let routing = |error| EmbeddingsError::Routing {
            model: model.name.clone(),
            error,
        };
        let estimate = embeddings.estimated_tokens();
        let mut attempts = Attempts::new(
            ready,
            &self.settings,
            embeddings.largest_input_tokens(),
            request.received,
        );
        while let Some(target) = attempts.next_target(&self.health, now_ms()) {
            let Some(mut reservation) =
                self.prepare_attempt(&mut attempts, &target, estimate).await
            else {
                continue;
            };
            let body = self.embeddings_body(&target, embeddings);
            let sent = Instant::now();
            let failure = match self
                .call_embeddings(&target, body, embeddings.inputs(), attempts.deadline)
                .await
            {
                Ok(EmbeddingsReply { body, info, rate }) => {
                    attempts.succeeded(&target);
                    self.after_success(&target, None, &rate, sent.elapsed())
                        .await;
                    self.settle(
                        reservation.take(),
                        info.usage.map_or(estimate, |u| u.total()),
                    );
                    let served = Served {
                        route_id: target.route_id().to_string(),
                        provider: target.provider().to_string(),
                        model: info
                            .model
                            .unwrap_or_else(|| target.candidate.route.upstream_model.clone()),
                        trail: attempts.trail.clone(),
                    };
                    let embedded = Embedded {
                        body,
                        served,
                        model: model.name.clone(),
                    };
                    return Ok((embedded, info.usage));
                }
                Err(failure) => failure,
            };
            self.release_after(reservation.take(), failure.kind, estimate);
            if let Some(wait) = attempts
                .failed(&target, &failure, &self.context(), now_ms(), false)
                .map_err(routing)?
            {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
        Err(routing(attempts.into_error(&self.health, now_ms())))
    }

    /// The body for one upstream: the request's fields the route's adapter takes, `model` set.
    fn embeddings_body(&self, target: &Target, request: &EmbeddingsRequest) -> JsonObject {
        let adapter = self.adapter(target).map(|a| a.as_ref());
        request.upstream_body(&target.candidate.route.upstream_model, |name| {
            self.fields.reaches_embedding(name, adapter)
        })
    }

    /// One embeddings call, bounded by the header timeout and the request's deadline.
    async fn call_embeddings(
        &self,
        target: &Target,
        body: JsonObject,
        inputs: usize,
        deadline: Instant,
    ) -> Result<EmbeddingsReply, UpstreamFailure> {
        let Some(adapter) = self.adapter(target) else {
            return Err(UpstreamFailure::new(
                FailureKind::Connect,
                "no adapter for this provider",
            ));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let call = UpstreamCall {
            provider: &target.candidate.provider,
            key: target.key.as_ref(),
            body,
            stream: false,
            header_timeout: left.min(Duration::from_millis(self.settings.header_timeout_ms)),
            idle_timeout: left.min(Duration::from_millis(self.settings.stream_idle_timeout_ms)),
            max_body_bytes: self.settings.max_upstream_body_bytes,
            now: now_ms(),
        };
        let sending = send_embeddings(adapter.as_ref(), self.http(), call, inputs);
        match tokio::time::timeout(left, sending).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamFailure::new(
                FailureKind::StreamIdle,
                "the answer was not whole by the deadline",
            )),
        }
    }
}
