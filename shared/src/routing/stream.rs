//! Streaming: hold the upstream stream until its commit point (first content, reasoning or tool call),
//! fall back invisibly before it, and after it rescue a cut or stalled stream by continuing the answer
//! on another route — with the partial answer as an assistant prefill, or by restarting and forwarding
//! only what extends the text already sent. Only when nothing can continue does the client get an
//! error event; a truncated answer is never closed as if complete.

use super::attempts::{Attempts, Target};
use super::chunk::{ChunkInfo, Usage};
use super::engine::{Engine, RequestRecord, RouteRequest, Served, error_status, record_request};
use super::error::RoutingError;
use crate::metrics as m;
use crate::providers::body::JsonObject;
use crate::providers::{EventStream, FailureKind, StreamFault, UpstreamFailure, UpstreamReply};
use crate::quota::HeldReservation;
use crate::time::now_ms;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// An upstream stream read up to its commit point.
struct Opened {
    /// The chunks read so far, the commit chunk last.
    pending: VecDeque<Chunk>,
    upstream: EventStream,
}

/// One upstream chunk: its data as it arrived (forwarded as is) and what it carries.
struct Chunk {
    data: String,
    info: ChunkInfo,
}

/// A stream committed to a route: the response headers can be sent; [`CommittedStream::into_body`] drives the rest.
pub struct CommittedStream {
    engine: Arc<Engine>,
    request: RouteRequest,
    attempts: Attempts,
    target: Target,
    opened: Opened,
    pub served: Served,
    ttft: Duration,
    /// The quota taken for the route now streaming.
    reservation: HeldReservation,
    estimate: u64,
}

/// How chunks of the current upstream are passed on.
enum Mode {
    /// As they come.
    Direct,
    /// A continuation after a prefill: as they come, less chunks that carry nothing (a second role chunk).
    Continuation,
    /// A restarted answer: held until it extends the text already sent, then only the extension.
    Restart { expected: String, seen: String },
}

enum Flow {
    Continue,
    Finished,
    Diverged,
    ClientGone,
}

/// The client side of the stream, and what it has been sent.
struct Output {
    tx: mpsc::Sender<Bytes>,
    /// A client that takes no chunk for this long is dropped.
    send_timeout: Duration,
    /// The client stopped reading (as opposed to leaving).
    too_slow: bool,
    include_usage: bool,
    /// The text sent so far (a rescue's prefill), up to `max_text_bytes`.
    sent_text: String,
    /// `max_upstream_body_bytes`: a longer answer is forwarded but not kept.
    max_text_bytes: usize,
    /// The answer outgrew `max_text_bytes`: `sent_text` was dropped and cannot be continued.
    text_overflow: bool,
    sent_tool_calls: bool,
    finish_seen: bool,
    usage: Option<Usage>,
    /// `n` > 1: choice 0 alone does not tell when the answer ends, and cannot be rescued.
    several_choices: bool,
}

impl Output {
    async fn send_json(&mut self, chunk: &Value) -> bool {
        match serde_json::to_string(chunk) {
            Ok(data) => self.send_data(&data).await,
            Err(_) => true,
        }
    }

    /// Sends one event's data as it came, within the send timeout.
    async fn send_data(&mut self, data: &str) -> bool {
        let mut line = Vec::with_capacity(data.len() + 8);
        line.extend_from_slice(b"data: ");
        line.extend_from_slice(data.as_bytes());
        line.extend_from_slice(b"\n\n");
        self.send(Bytes::from(line)).await
    }

    async fn send(&mut self, bytes: Bytes) -> bool {
        match tokio::time::timeout(self.send_timeout, self.tx.send(bytes)).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                self.too_slow = true;
                false
            }
        }
    }

    /// The client has gone: nothing more is worth fetching for it.
    fn client_gone(&self) -> bool {
        self.too_slow || self.tx.is_closed()
    }

    async fn done(&mut self) {
        let _ = self.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
    }

    async fn error_event(&mut self, code: &str, message: &str) {
        let event = json!({"error": {
            "message": message,
            "type": "server_error",
            "code": code,
            "param": null,
        }});
        let _ = self.send_json(&event).await;
    }

    /// Whether the answer is whole. With several choices (`n` > 1) only the upstream's end says so:
    /// one choice finishing does not finish the others.
    fn complete(&self) -> bool {
        !self.several_choices && self.finish_seen && (!self.include_usage || self.usage.is_some())
    }

    /// Passes one chunk on according to the mode.
    async fn handle(&mut self, mode: &mut Mode, chunk: Chunk) -> Flow {
        let Chunk { data, info } = chunk;
        let sent = match mode {
            Mode::Direct => self.send_data(&data).await,
            Mode::Continuation => {
                let carries =
                    info.is_commit_point() || info.finish_reason.is_some() || info.usage.is_some();
                !carries || self.send_data(&data).await
            }
            Mode::Restart { expected, seen } => {
                if info.has_tool_calls {
                    return Flow::Diverged;
                }
                seen.push_str(&info.content);
                if seen.len() <= expected.len() {
                    if !expected.starts_with(seen.as_str()) {
                        return Flow::Diverged;
                    }
                    if info.finish_reason.is_some() && seen != expected {
                        return Flow::Diverged;
                    }
                    if info.finish_reason.is_none() {
                        if info.usage.is_some() {
                            self.usage = info.usage;
                        }
                        return Flow::Continue;
                    }
                    // The restarted answer ends exactly where the sent text did: pass the ending on.
                    let ending = with_content(&data, "");
                    let ok = self.send_json(&ending).await;
                    *mode = Mode::Continuation;
                    self.note(&info, false);
                    return if ok { self.flow() } else { Flow::ClientGone };
                }
                if !seen.starts_with(expected.as_str()) {
                    return Flow::Diverged;
                }
                let extension = seen[expected.len()..].to_string();
                let ok = self.send_json(&with_content(&data, &extension)).await;
                self.remember(&extension);
                *mode = Mode::Continuation;
                self.note(&info, false);
                return if ok { self.flow() } else { Flow::ClientGone };
            }
        };
        if !sent {
            return Flow::ClientGone;
        }
        self.note(&info, true);
        self.flow()
    }

    fn note(&mut self, info: &ChunkInfo, content_sent: bool) {
        if content_sent {
            self.remember(&info.content);
        }
        self.sent_tool_calls |= info.has_tool_calls;
        self.finish_seen |= info.finish_reason.is_some();
        if info.usage.is_some() {
            self.usage = info.usage;
        }
    }

    /// Keeps sent text for a rescue, within the bound: past it the text is dropped, so a stream of
    /// any length holds at most `max_text_bytes` of it.
    fn remember(&mut self, text: &str) {
        if self.text_overflow {
            return;
        }
        if self.sent_text.len() + text.len() > self.max_text_bytes {
            self.text_overflow = true;
            self.sent_text = String::new();
            return;
        }
        self.sent_text.push_str(text);
    }

    fn flow(&self) -> Flow {
        if self.complete() {
            Flow::Finished
        } else {
            Flow::Continue
        }
    }
}

/// The chunk with choice 0's delta content replaced (a restarted answer's rewrite: the one place a
/// chunk is parsed into a tree).
fn with_content(data: &str, content: &str) -> Value {
    let mut chunk: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    if let Some(delta) = chunk.pointer_mut("/choices/0/delta")
        && let Some(delta) = delta.as_object_mut()
    {
        delta.insert("content".into(), Value::String(content.to_string()));
    }
    chunk
}

impl Engine {
    /// Opens a stream: tries routes until one reaches its commit point.
    pub async fn open_stream(
        self: &Arc<Self>,
        request: RouteRequest,
    ) -> Result<CommittedStream, RoutingError> {
        let result = self.open_stream_inner(&request).await;
        if let Err(error) = &result {
            self.record(
                &request,
                error_status(error),
                None,
                error.trail(),
                Some(error),
                None,
                None,
            );
        }
        let (attempts, target, opened, served, ttft, reservation) = result?;
        Ok(CommittedStream {
            engine: self.clone(),
            estimate: Self::token_estimate(&request, &target),
            request,
            attempts,
            target,
            opened,
            served,
            ttft,
            reservation,
        })
    }

    #[allow(clippy::type_complexity)]
    async fn open_stream_inner(
        &self,
        request: &RouteRequest,
    ) -> Result<(Attempts, Target, Opened, Served, Duration, HeldReservation), RoutingError> {
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
            match self.open_on(&target, body, attempts.deadline).await {
                Ok((opened, rate)) => {
                    attempts.succeeded(&target);
                    let ttft = sent.elapsed();
                    self.after_success(&target, attempts.session, &rate, ttft)
                        .await;
                    let model = opened
                        .pending
                        .iter()
                        .find_map(|c| c.info.model.clone())
                        .unwrap_or_else(|| target.candidate.route.upstream_model.clone());
                    let served = Served {
                        route_id: target.route_id().to_string(),
                        provider: target.provider().to_string(),
                        model,
                        trail: attempts.trail.clone(),
                    };
                    return Ok((attempts, target, opened, served, ttft, reservation));
                }
                Err(failure) => {
                    self.release_after(reservation.take(), failure.kind, estimate);
                    if let Some(wait) =
                        attempts.failed(&target, &failure, &self.context(), now_ms(), false)?
                    {
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                }
            }
        }
        Err(attempts.into_error(&self.health, now_ms()))
    }

    /// Calls one route for a stream and reads it to the commit point.
    async fn open_on(
        &self,
        target: &Target,
        body: JsonObject,
        deadline: Instant,
    ) -> Result<(Opened, crate::providers::RateLimitInfo), UpstreamFailure> {
        let (events, rate) = match self.call(target, body, true, deadline).await? {
            UpstreamReply::Stream { events, rate } => (events, rate),
            UpstreamReply::Complete { .. } => {
                return Err(UpstreamFailure::new(
                    FailureKind::Malformed,
                    "a JSON answer where a stream was asked for",
                ));
            }
        };
        let first_token = target
            .candidate
            .provider
            .first_token_timeout_ms
            .unwrap_or(self.settings.first_token_timeout_ms);
        let limit = (Instant::now() + Duration::from_millis(first_token)).min(deadline);
        self.read_to_commit(events, limit, target.provider())
            .await
            .map(|opened| (opened, rate.clone()))
            .map_err(|failure| UpstreamFailure { rate, ..failure })
    }

    async fn read_to_commit(
        &self,
        mut events: EventStream,
        limit: Instant,
        provider: &str,
    ) -> Result<Opened, UpstreamFailure> {
        let mut pending = VecDeque::new();
        let mut finished = false;
        // What is held before the commit point is bounded like one event: a flood of chunks that
        // carry nothing cannot pile up.
        let mut held_bytes = 0usize;
        loop {
            let left = limit.saturating_duration_since(Instant::now());
            let event = match tokio::time::timeout(left, events.next()).await {
                Err(_) => {
                    return Err(UpstreamFailure::new(
                        FailureKind::FirstTokenTimeout,
                        "no first token in time",
                    ));
                }
                Ok(None) if finished => {
                    return Err(UpstreamFailure::new(
                        FailureKind::EmptyCompletion,
                        "the stream ended with no content",
                    ));
                }
                Ok(None) => {
                    return Err(UpstreamFailure::new(
                        FailureKind::Reset,
                        "the stream ended before any content",
                    ));
                }
                Ok(Some(Err(StreamFault::TooLarge))) => {
                    return Err(UpstreamFailure::new(
                        FailureKind::BodyTooLarge,
                        "an upstream event exceeded the bound",
                    ));
                }
                Ok(Some(Err(StreamFault::Io(e)))) => {
                    return Err(UpstreamFailure::new(FailureKind::Reset, e));
                }
                Ok(Some(Ok(event))) => event,
            };
            if event.data.trim() == "[DONE]" {
                return Err(UpstreamFailure::new(
                    FailureKind::EmptyCompletion,
                    "the stream ended with no content",
                ));
            }
            let Some(info) = ChunkInfo::parse(&event.data) else {
                skipped(provider);
                continue;
            };
            if info.is_error || event.event.as_deref() == Some("error") {
                let message = serde_json::from_str::<Value>(&event.data)
                    .ok()
                    .and_then(|chunk| {
                        chunk
                            .pointer("/error/message")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "the upstream sent an error event".to_string());
                return Err(UpstreamFailure::new(FailureKind::Server, message));
            }
            finished |= info.finish_reason.is_some();
            let commit = info.is_commit_point();
            held_bytes += event.data.len();
            if held_bytes > self.settings.max_upstream_body_bytes {
                return Err(UpstreamFailure::new(
                    FailureKind::BodyTooLarge,
                    "the stream held more than the bound before its first content",
                ));
            }
            pending.push_back(Chunk {
                data: event.data,
                info,
            });
            if commit {
                return Ok(Opened {
                    pending,
                    upstream: events,
                });
            }
        }
    }
}

/// Why a client's stream ended early: it left, or it stopped reading.
fn left(out: &Output) -> &'static str {
    if out.too_slow {
        "client_too_slow"
    } else {
        "client_closed"
    }
}

fn skipped(provider: &str) {
    metrics::counter!(m::SSE_EVENTS_SKIPPED_TOTAL, "provider" => provider.to_string()).increment(1);
}

impl CommittedStream {
    /// The SSE body for the client; a task drives the upstream (and any rescue) and ends when the
    /// client leaves. `guard` is held until then (an open-stream permit, say).
    pub fn into_body<G: Send + 'static>(
        self,
        guard: G,
    ) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        let (tx, rx) = mpsc::channel::<Bytes>(32);
        tokio::spawn(async move {
            self.forward(tx).await;
            drop(guard);
        });
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) },
        )
    }

    async fn forward(mut self, tx: mpsc::Sender<Bytes>) {
        let settings = self.engine.settings.clone();
        let mut out = Output {
            tx,
            send_timeout: Duration::from_millis(settings.stream_send_timeout_ms),
            too_slow: false,
            include_usage: self.request.chat.include_usage,
            sent_text: String::new(),
            max_text_bytes: settings.max_upstream_body_bytes,
            text_overflow: false,
            sent_tool_calls: false,
            finish_seen: false,
            usage: None,
            several_choices: self.request.chat.choices > 1,
        };
        let mut mode = Mode::Direct;
        // However well it flows, a committed stream ends by this time.
        let deadline =
            self.request.received + Duration::from_millis(settings.stream_total_timeout_ms);
        // Shutdown past its grace: the stream ends here, settled and logged, rather than cut.
        let mut draining = std::pin::pin!(self.engine.ledger.draining());
        let interrupted = loop {
            let cut = loop {
                if let Some(chunk) = self.opened.pending.pop_front() {
                    match out.handle(&mut mode, chunk).await {
                        Flow::Continue => continue,
                        Flow::Finished => break None,
                        Flow::Diverged => break Some(FailureKind::Malformed),
                        Flow::ClientGone => return self.finish(&out, left(&out)),
                    }
                }
                let idle = Duration::from_millis(if out.finish_seen {
                    settings.stream_tail_grace_ms
                } else {
                    settings.stream_idle_timeout_ms
                });
                if Instant::now() >= deadline {
                    return self.stream_timeout(&mut out).await;
                }
                let past_deadline = Instant::now() + idle >= deadline;
                let wait = idle.min(deadline.saturating_duration_since(Instant::now()));
                let next = tokio::select! {
                    next = tokio::time::timeout(wait, self.opened.upstream.next()) => next,
                    // A client that leaves while the upstream is quiet is noticed at once.
                    _ = out.tx.closed() => return self.finish(&out, "client_closed"),
                    _ = draining.as_mut() => {
                        out.error_event("shutdown", "the gateway is shutting down").await;
                        return self.finish(&out, "shutdown");
                    }
                };
                match next {
                    Err(_) if out.finish_seen => break None,
                    Err(_) if past_deadline => return self.stream_timeout(&mut out).await,
                    Err(_) => break Some(FailureKind::StreamIdle),
                    Ok(None) | Ok(Some(Err(StreamFault::Io(_)))) if out.finish_seen => break None,
                    Ok(None) | Ok(Some(Err(StreamFault::Io(_)))) => break Some(FailureKind::Reset),
                    Ok(Some(Err(StreamFault::TooLarge))) => break Some(FailureKind::BodyTooLarge),
                    Ok(Some(Ok(event))) => {
                        if event.data.trim() == "[DONE]" {
                            if matches!(mode, Mode::Restart { .. }) {
                                break Some(FailureKind::Malformed);
                            }
                            break None;
                        }
                        match ChunkInfo::parse(&event.data) {
                            Some(info)
                                if info.is_error || event.event.as_deref() == Some("error") =>
                            {
                                break Some(FailureKind::Server);
                            }
                            Some(info) => self.opened.pending.push_back(Chunk {
                                data: event.data,
                                info,
                            }),
                            None => skipped(self.target.provider()),
                        }
                    }
                }
            };
            let Some(kind) = cut else {
                out.done().await;
                // Read to its end, the upstream's connection goes back to the pool; dropped
                // mid-body it is closed, and the next stream pays for a new one.
                let tail = Duration::from_millis(settings.stream_tail_grace_ms);
                let _ = tokio::time::timeout(tail, async {
                    while let Some(Ok(_)) = self.opened.upstream.next().await {}
                })
                .await;
                if out.client_gone() {
                    return self.finish(&out, left(&out));
                }
                break false;
            };
            if out.client_gone() {
                return self.finish(&out, left(&out));
            }
            tracing::info!(
                route = self.target.route_id(),
                reason = kind.label(),
                "committed stream cut; rescuing"
            );
            if self.rescue(&out, kind, &mut mode).await {
                metrics::counter!(m::STREAM_RESCUES_TOTAL, "result" => "continued").increment(1);
                continue;
            }
            if out.client_gone() {
                return self.finish(&out, left(&out));
            }
            metrics::counter!(m::STREAM_RESCUES_TOTAL, "result" => "failed").increment(1);
            out.error_event(
                "stream_interrupted",
                "the upstream stream broke off and no route could continue the answer",
            )
            .await;
            break true;
        };
        self.finish(
            &out,
            if interrupted {
                "stream_interrupted"
            } else {
                "ok"
            },
        );
    }

    /// Ends a stream that ran past its total deadline, however well it was flowing.
    async fn stream_timeout(&mut self, out: &mut Output) {
        out.error_event(
            "stream_timeout",
            "the stream ran past the gateway's total stream deadline",
        )
        .await;
        self.finish(out, "stream_timeout");
    }

    /// Finds a route that continues the answer; on success the stream and mode are replaced. Stops
    /// as soon as the client is gone: no upstream is called for nobody.
    async fn rescue(&mut self, out: &Output, cut: FailureKind, mode: &mut Mode) -> bool {
        let engine = self.engine.clone();
        // The broken stream had started: the provider counted it.
        engine.settle(self.reservation.take(), self.estimate);
        let failure = UpstreamFailure::new(cut, "the stream broke off after the commit point");
        if cut == FailureKind::Malformed {
            // A restarted answer that diverged: not the route's fault, just not a continuation.
            self.attempts.trail.push(self.target.route_id(), "diverged");
        } else {
            let _ = self
                .attempts
                .failed(&self.target, &failure, &engine.context(), now_ms(), true);
        }
        self.attempts.leave_current_route();
        if out.sent_tool_calls || out.several_choices || out.text_overflow {
            return false;
        }
        while !out.client_gone()
            && let Some(target) = self.attempts.next_target(&engine.health, now_ms())
        {
            let prefill =
                !out.sent_text.is_empty() && !target.candidate.route.has_tag("no-prefill");
            if prefill {
                let body = engine.upstream_body(&target, &self.request, Some(&out.sent_text));
                match self.try_open(out, &target, body).await {
                    Some(Ok(opened)) => {
                        *mode = Mode::Continuation;
                        return self.adopt(target, opened);
                    }
                    // No quota on this key: the driver moves on.
                    None => continue,
                    // A refused prefill: the same route may still restart the answer.
                    Some(Err(FailureKind::ClientError)) => {}
                    Some(Err(_)) => continue,
                }
            }
            if out.client_gone() {
                break;
            }
            let body = engine.upstream_body(&target, &self.request, None);
            match self.try_open(out, &target, body).await {
                Some(Ok(opened)) => {
                    *mode = Mode::Restart {
                        expected: out.sent_text.clone(),
                        seen: String::new(),
                    };
                    return self.adopt(target, opened);
                }
                None => {}
                Some(Err(_)) => self.attempts.leave_current_route(),
            }
        }
        false
    }

    /// One rescue attempt with its reservation: `None` when the key had no quota (nothing was
    /// called) or the client left meanwhile (the attempt is dropped).
    async fn try_open(
        &mut self,
        out: &Output,
        target: &Target,
        body: JsonObject,
    ) -> Option<Result<(Opened, HeldReservation), FailureKind>> {
        let engine = self.engine.clone();
        let mut reservation = engine
            .prepare_attempt(&mut self.attempts, target, self.estimate)
            .await?;
        let opened = tokio::select! {
            opened = engine.open_on(target, body, self.attempts.deadline) => opened,
            _ = out.tx.closed() => {
                engine.release_after(reservation.take(), FailureKind::Reset, self.estimate);
                return None;
            }
        };
        match opened {
            Ok((opened, _)) => Some(Ok((opened, reservation))),
            Err(failure) => {
                engine.release_after(reservation.take(), failure.kind, self.estimate);
                let wait = self
                    .attempts
                    .failed(target, &failure, &engine.context(), now_ms(), true)
                    .ok()
                    .flatten();
                if let Some(ms) = wait {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Some(Err(failure.kind))
            }
        }
    }

    fn adopt(&mut self, target: Target, (opened, reservation): (Opened, HeldReservation)) -> bool {
        self.attempts.succeeded(&target);
        self.served.route_id = target.route_id().to_string();
        self.served.provider = target.provider().to_string();
        self.target = target;
        self.opened = opened;
        self.reservation = reservation;
        true
    }

    fn finish(&mut self, out: &Output, outcome: &'static str) {
        let used = out.usage.map(|u| u.total());
        let tokens = Engine::charged(&self.target, used, self.estimate);
        self.engine.settle(self.reservation.take(), tokens);
        self.served_record(out, outcome);
    }

    fn served_record(&self, out: &Output, outcome: &'static str) {
        let served = Served {
            trail: self.attempts.trail.clone(),
            ..self.served.clone()
        };
        record_request(
            &self.engine.writer,
            RequestRecord {
                request_id: &self.request.request_id,
                endpoint: self.request.endpoint,
                requested_model: &self.request.chat.model,
                stream: true,
                received: self.request.received,
                status: 200,
                outcome,
                served: Some(&served),
                trail: Some(&served.trail),
                usage: out.usage,
                ttft: Some(self.ttft),
            },
        );
    }
}
