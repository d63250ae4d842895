//! Building HTTP responses: JSON, SSE, OpenAI-shaped errors, scripted statuses, rate-limit headers.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::behavior::error_body;

/// The rate-limit headers every successful response carries.
const RATE_LIMIT_HEADERS: [(&str, &str); 2] = [
    ("x-ratelimit-limit-requests", "1000"),
    ("x-ratelimit-remaining-requests", "999"),
];

/// A response with this status, content type and body; 2xx responses get the rate-limit headers.
pub(crate) fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status.is_success() {
        for (name, value) in RATE_LIMIT_HEADERS {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
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
