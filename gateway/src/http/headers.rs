//! The `X-Gateway-*` and `X-Request-Id` headers every routed response carries.

use axum::http::{HeaderMap, HeaderValue, header};
use freerouter::routing::Served;

pub fn request_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("x-request-id", value);
    }
}

pub fn served(headers: &mut HeaderMap, served: &Served) {
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("x-gateway-provider", &served.provider);
    set("x-gateway-route", &served.route_id);
    set("x-gateway-model", &served.model);
    set("x-gateway-attempts", &served.trail.attempts().to_string());
    set("x-gateway-trail", &served.trail.header_value());
}

/// The headers of an SSE response: its type, no caching, no proxy buffering.
pub fn event_stream(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}
