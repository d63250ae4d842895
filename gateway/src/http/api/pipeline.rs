//! The path every client API shares (chat completions, and the faces that translate to it):
//! admission before reading, the body read within its bounds, a validated [`ChatRequest`], and the
//! engine's answer — a whole completion, or a committed stream holding its open-stream permit.
//! Refusals before routing are counted and logged here; what routing logs, the engine logs.

use crate::http::body::read_body;
use crate::http::error::ApiError;
use crate::http::headers;
use crate::limits::{QueueRefusal, Slot};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, header};
use freerouter::metrics as m;
use freerouter::routing::priority::Priority;
use freerouter::routing::{
    ChatRequest, CommittedStream, Completion, RequestRecord, RouteRequest, record_request,
};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Which client API a request came in on.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    /// The metric and log label (`chat_completions`, `messages`, …).
    pub name: &'static str,
    /// Only `web-search` routes, with the search asked for in each provider's form.
    pub web_search: bool,
}

/// One client request on its way through.
pub struct Incoming<'a> {
    pub state: &'a AppState,
    pub headers: &'a HeaderMap,
    pub endpoint: Endpoint,
    pub request_id: String,
    pub received: Instant,
}

/// What the engine answered.
pub enum Routed {
    Complete(Completion),
    /// A stream past its commit point, and the permit it holds until it ends (boxed: it is large).
    Stream(Box<CommittedStream>, OwnedSemaphorePermit),
}

impl<'a> Incoming<'a> {
    pub fn new(state: &'a AppState, headers: &'a HeaderMap, endpoint: Endpoint) -> Self {
        Self {
            state,
            headers,
            endpoint,
            request_id: format!("req_{}", uuid::Uuid::new_v4().simple()),
            received: Instant::now(),
        }
    }

    /// Counts and logs a request refused before routing; returns the error to answer with.
    pub fn refused(&self, code: &'static str, error: ApiError) -> ApiError {
        record_request(
            &self.state.engine.writer,
            RequestRecord {
                request_id: &self.request_id,
                endpoint: self.endpoint.name,
                requested_model: "",
                stream: false,
                received: self.received,
                status: error.status.as_u16(),
                outcome: code,
                served: None,
                trail: None,
                usage: None,
                ttft: None,
            },
        );
        error
    }

    /// Takes a slot (or waits in the queue for one), then reads the body. Admission comes first: a
    /// waiting request holds its socket, not its body, so memory is bounded by the slots.
    pub async fn admit(&self, body: Body) -> Result<(Slot, Bytes), ApiError> {
        let settings = &self.state.settings.server;
        let max_body = settings.max_body_bytes;
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_body as u64) {
            return Err(self.refused("request_too_large", ApiError::too_large(max_body)));
        }
        let read_timeout = Duration::from_millis(settings.body_read_timeout_ms);
        let slot = match self.state.limiter.acquire().await {
            Ok(slot) => slot,
            Err(why) => {
                metrics::counter!(m::QUEUE_TIMEOUTS_TOTAL, "reason" => match why {
                    QueueRefusal::Full => "queue_full",
                    QueueRefusal::TimedOut => "waited_too_long",
                })
                .increment(1);
                // The body is read and thrown away (never held) so the client, still sending it,
                // reads the 429 instead of a reset connection; a client slower than a second to
                // send it gets the reset.
                discard(body, max_body, read_timeout.min(Duration::from_secs(1))).await;
                return Err(self.refused(
                    "request_queue_timeout",
                    ApiError::queue_timeout(self.state.limiter.retry_after_secs()),
                ));
            }
        };
        match read_body(body, max_body, read_timeout).await {
            Ok(bytes) => Ok((slot, bytes)),
            Err(error) => Err(self.refused(error.code, error)),
        }
    }

    /// Parses a chat completions body (the client's own, or one a translating face wrote).
    pub fn parse_chat(&self, bytes: &[u8]) -> Result<ChatRequest, ApiError> {
        ChatRequest::parse(bytes, &self.state.engine.fields).map_err(|invalid| {
            self.refused(
                "invalid_request",
                ApiError::invalid_request(invalid.message, invalid.param),
            )
        })
    }

    /// Routes the request: a completion, or a stream once committed (which frees its slot and keeps
    /// an open-stream permit instead).
    pub async fn route(&self, chat: ChatRequest, slot: Slot) -> Result<Routed, ApiError> {
        let stream_permit = match chat.stream {
            false => None,
            true => Some(
                self.state
                    .streams
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| self.refused("too_many_streams", ApiError::too_many_streams()))?,
            ),
        };
        let header = |name: &HeaderName| self.headers.get(name).and_then(|v| v.to_str().ok());
        let strict =
            header(&headers::STRICT).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let priority = match header(&headers::PRIORITY).map(Priority::parse) {
            None => Priority::Normal,
            Some(Ok(priority)) => priority,
            Some(Err(invalid)) => {
                return Err(self.refused(
                    "invalid_request",
                    ApiError::invalid_request(
                        invalid.to_string(),
                        Some("X-FreeRouter-Priority".to_string()),
                    ),
                ));
            }
        };
        let request = RouteRequest {
            strict,
            priority,
            exclude: header(&headers::EXCLUDE)
                .map(freerouter::catalog::data_use::parse_exclude)
                .unwrap_or_default(),
            session_id: header(&headers::SESSION_ID).map(|v| v.chars().take(200).collect()),
            request_id: self.request_id.clone(),
            endpoint: self.endpoint.name,
            web_search: self.endpoint.web_search,
            received: self.received,
            chat,
        };
        let engine = &self.state.engine;
        match stream_permit {
            Some(permit) => {
                let committed = engine.open_stream(request).await?;
                // The rest is forwarding, not upstream choice.
                drop(slot);
                Ok(Routed::Stream(Box::new(committed), permit))
            }
            None => {
                let completion = engine.complete(&request).await?;
                drop(slot);
                Ok(Routed::Complete(completion))
            }
        }
    }
}

/// Reads a body to its end (at most `max` bytes, within `timeout`) keeping none of it.
async fn discard(mut body: Body, max: usize, timeout: Duration) {
    use http_body_util::BodyExt;
    let _ = tokio::time::timeout(timeout, async {
        let mut read = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > max {
                break;
            }
        }
    })
    .await;
}
