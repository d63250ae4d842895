//! Building HTTP responses: JSON, SSE, OpenAI-shaped errors, scripted statuses, rate-limit refusals.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::behavior::error_body;
use super::limits::Refusal;

/// A response with this status, content type and body.
pub(crate) fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn json(status: StatusCode, value: &Value) -> Response {
    with_body(status, "application/json", Body::from(value.to_string()))
}

/// A 200 `text/event-stream` response.
pub(crate) fn sse(body: Body) -> Response {
    let mut response = with_body(StatusCode::OK, "text/event-stream", body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// An OpenAI-shaped error.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, &error_body(status.as_u16(), code, message))
}

/// The 429 of a hit rate limit, in the simulator's dialect: OpenAI's body (`type` `requests` or
/// `tokens`), `retry-after` and the `x-ratelimit-*` headers by default.
pub(crate) fn limit_refusal(refusal: &Refusal) -> Response {
    let mut response = json(StatusCode::TOO_MANY_REQUESTS, &refusal.body);
    add_headers(
        &mut response,
        refusal
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    response
}

/// Adds headers the response does not have yet; invalid ones are skipped.
pub(crate) fn add_headers<'a>(
    response: &mut Response,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value))
            && !response.headers().contains_key(&name)
        {
            response.headers_mut().insert(name, value);
        }
    }
}

/// A scripted [`super::Behavior::Status`]; an invalid status becomes 500, invalid headers are skipped,
/// a `null` body is sent empty.
pub(crate) fn scripted(status: u16, body: &Value, extra: &[(String, String)]) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Value::Null => with_body(status, "application/json", Body::empty()),
        body => json(status, body),
    };
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
