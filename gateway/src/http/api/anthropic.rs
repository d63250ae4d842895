//! Errors in Anthropic's shape for the Messages face: [`error_response`] for the handlers' own
//! errors, and [`anthropic_errors`], the layer that rewrites the OpenAI-shaped refusals of the
//! layers in front (authentication, the per-client limit) for requests that speak Anthropic's
//! API — on `/v1/messages…`, or carrying `anthropic-version`. Status, `retry-after` and the
//! `X-Gateway-*` / `X-Request-Id` headers stay as they were.

use crate::http::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use freerouter::api::anthropic;

/// Error bodies larger than this are not rewritten (none of the gateway's is near it).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Whether a request speaks Anthropic's API.
pub fn speaks_anthropic(path: &str, headers: &HeaderMap) -> bool {
    path.starts_with("/v1/messages") || headers.contains_key("anthropic-version")
}

/// `error` as Anthropic's error response.
pub fn error_response(error: ApiError, request_id: &str) -> Response {
    let body = anthropic::error_body(error.status.as_u16(), &error.message, Some(request_id));
    let mut response = error.into_response();
    *response.body_mut() = Body::from(body.to_string());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Layer: an OpenAI-shaped error answered to an Anthropic request is rewritten in its shape.
pub async fn anthropic_errors(request: Request, next: Next) -> Response {
    if !speaks_anthropic(request.uri().path(), request.headers()) {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status().is_success() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY_BYTES).await else {
        return (parts.status, "").into_response();
    };
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    let body = match anthropic::from_openai_error(parts.status.as_u16(), &bytes, request_id) {
        Some(rewritten) => Body::from(rewritten.to_string()),
        None => Body::from(bytes),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}
