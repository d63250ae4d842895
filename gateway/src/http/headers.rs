//! The `X-Gateway-*` and `X-Request-Id` headers every routed response carries.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use freerouter::routing::Served;
use freerouter::routing::priority::Priority;

// Names made once, at compile time: a `&str` name is checked and hashed anew on every use.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const STRICT: HeaderName = HeaderName::from_static("x-freerouter-strict");
pub const PRIORITY: HeaderName = HeaderName::from_static(Priority::HEADER);
pub const EXCLUDE: HeaderName = HeaderName::from_static("x-freerouter-exclude");
pub const SESSION_ID: HeaderName = HeaderName::from_static("x-session-id");
const PROVIDER: HeaderName = HeaderName::from_static("x-gateway-provider");
const ROUTE: HeaderName = HeaderName::from_static("x-gateway-route");
const MODEL: HeaderName = HeaderName::from_static("x-gateway-model");
const ATTEMPTS: HeaderName = HeaderName::from_static("x-gateway-attempts");
const TRAIL: HeaderName = HeaderName::from_static("x-gateway-trail");
const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

pub fn request_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert(REQUEST_ID, value);
    }
}

pub fn served(headers: &mut HeaderMap, served: &Served) {
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(PROVIDER, &served.provider);
    set(ROUTE, &served.route_id);
    set(MODEL, &served.model);
    set(ATTEMPTS, &served.trail.attempts().to_string());
    set(TRAIL, &served.trail.header_value());
}

/// The headers of an SSE response: its type, no caching, no proxy buffering.
pub fn event_stream(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(ACCEL_BUFFERING, HeaderValue::from_static("no"));
}
