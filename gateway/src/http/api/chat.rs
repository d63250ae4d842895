//! `POST /v1/chat/completions`: parse, take a slot, let the engine route, map the result.

use crate::http::error::ApiError;
use crate::http::headers;
use crate::limits::QueueRefusal;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use freerouter::metrics as m;
use freerouter::routing::{ChatRequest, RequestRecord, RouteRequest, record_request};
use std::time::{Duration, Instant};

/// Which chat endpoint a request came in on.
#[derive(Clone, Copy)]
struct Endpoint {
    /// The metric and log label.
    name: &'static str,
    web_search: bool,
}

const CHAT: Endpoint = Endpoint {
    name: "chat_completions",
    web_search: false,
};
const WEB_SEARCH: Endpoint = Endpoint {
    name: "chat_completions_web_search",
    web_search: true,
};

/// `POST /v1/chat/completions`
pub async fn chat_completions(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handle(state, headers, body, CHAT).await
}

/// `POST /v1/chat/completions/web-search`: the same, only through `web-search` routes, with the
/// search asked for in each provider's own form.
pub async fn web_search(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handle(state, headers, body, WEB_SEARCH).await
}

async fn handle(
    State(state): State<AppState>,
    request_headers: HeaderMap,
    body: Body,
    endpoint: Endpoint,
) -> Response {
    let received = Instant::now();
    let request_id = format!("req_{}", uuid::Uuid::new_v4().simple());
    let mut response = match serve(
        &state,
        &request_headers,
        body,
        received,
        &request_id,
        endpoint,
    )
    .await
    {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    headers::request_id(response.headers_mut(), &request_id);
    response
}

/// Admission comes before reading and parsing: a request waiting for its slot holds its socket,
/// not its body, and a request being parsed holds a slot, so memory is bounded by the slots.
async fn serve(
    state: &AppState,
    request_headers: &HeaderMap,
    body: Body,
    received: Instant,
    request_id: &str,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let refused = |code: &'static str, error: ApiError| {
        record_request(
            &state.engine.writer,
            RequestRecord {
                request_id,
                endpoint: endpoint.name,
                requested_model: "",
                stream: false,
                received,
                status: error.status.as_u16(),
                outcome: code,
                served: None,
                trail: None,
                usage: None,
                ttft: None,
            },
        );
        error
    };
    let max_body = state.settings.server.max_body_bytes;
    let declared = request_headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body as u64) {
        return Err(refused("request_too_large", ApiError::too_large(max_body)));
    }
    let read_timeout = Duration::from_millis(state.settings.server.body_read_timeout_ms);
    let slot = match state.limiter.acquire().await {
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
            return Err(refused(
                "request_queue_timeout",
                ApiError::queue_timeout(state.limiter.retry_after_secs()),
            ));
        }
    };
    let bytes = match tokio::time::timeout(read_timeout, axum::body::to_bytes(body, max_body)).await
    {
        Err(_) => {
            return Err(refused(
                "request_timeout",
                ApiError::body_timeout(read_timeout),
            ));
        }
        Ok(Err(error)) if is_over_limit(&error) => {
            return Err(refused("request_too_large", ApiError::too_large(max_body)));
        }
        Ok(Err(_)) => {
            return Err(refused(
                "invalid_request",
                ApiError::invalid_request("the request body could not be read whole", None),
            ));
        }
        Ok(Ok(bytes)) => bytes,
    };
    let chat = ChatRequest::parse(&bytes, &state.engine.fields).map_err(|invalid| {
        refused(
            "invalid_request",
            ApiError::invalid_request(invalid.message, invalid.param),
        )
    })?;
    // What routing needs is parsed out; the bytes are not kept while the upstream answers.
    drop(bytes);
    let stream_permit = match chat.stream {
        false => None,
        true => Some(
            state
                .streams
                .clone()
                .try_acquire_owned()
                .map_err(|_| refused("too_many_streams", ApiError::too_many_streams()))?,
        ),
    };
    let strict = request_headers
        .get("x-freerouter-strict")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let session_id = request_headers
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect());
    let request = RouteRequest {
        strict,
        session_id,
        request_id: request_id.to_string(),
        endpoint: endpoint.name,
        web_search: endpoint.web_search,
        received,
        chat,
    };
    if let Some(permit) = stream_permit {
        let committed = state.engine.open_stream(request).await?;
        // A committed stream frees its slot: the rest is forwarding, not upstream choice. It
        // keeps its open-stream permit until it ends.
        drop(slot);
        let served = committed.served.clone();
        let mut response = Response::new(Body::from_stream(committed.into_body(permit)));
        headers::served(response.headers_mut(), &served);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        return Ok(response);
    }
    let completion = state.engine.complete(&request).await?;
    drop(slot);
    let mut response = (StatusCode::OK, completion.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers::served(response.headers_mut(), &completion.served);
    Ok(response)
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

/// Whether reading the body stopped at the size limit (rather than the connection failing).
fn is_over_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}
