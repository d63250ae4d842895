//! The one API error type: OpenAI's error shape `{"error":{"message","type","code","param"}}`,
//! plus `attempts` where routes were tried, and the status that tells the client what to do.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use freerouter::routing::{AttemptRecord, RoutingError, Trail, error_status};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, low-cardinality code (`invalid_request`, `quota_exhausted`, …).
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// Boxed: most errors have none, and the type stays small.
    pub trail: Option<Box<Trail>>,
    /// An upstream's own error body, passed on unchanged.
    pub upstream_body: Option<Box<Bytes>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            param: None,
            retry_after_secs: None,
            trail: None,
            upstream_body: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>, param: Option<String>) -> Self {
        Self {
            param,
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
        }
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn queue_timeout(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "request_queue_timeout",
                "the gateway is at its concurrency limit and the wait queue is full or took too long; retry later",
            )
        }
    }

    pub fn too_many_streams() -> Self {
        Self {
            retry_after_secs: Some(1),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                "the gateway has as many streams open as it allows (limits.max_open_streams); retry later",
            )
        }
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "this client is over its request rate limit; retry later",
            )
        }
    }

    /// The body did not arrive whole within `server.body_read_timeout_ms`.
    pub fn body_timeout(timeout_ms: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request body did not arrive within {timeout_ms} ms"),
        )
    }

    /// Too many failed credential checks from this client (or from all together).
    pub fn auth_throttled(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failed_attempts",
                "too many wrong credentials were tried; no credential is checked until Retry-After has passed",
            )
        }
    }

    fn error_type(&self) -> &'static str {
        match self.status.as_u16() {
            429 => "rate_limit_error",
            401 => "authentication_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        }
    }
}

fn attempts_json(trail: &Trail) -> Vec<&AttemptRecord> {
    trail.records().iter().collect()
}

impl From<RoutingError> for ApiError {
    fn from(error: RoutingError) -> Self {
        let status = StatusCode::from_u16(error_status(&error)).unwrap_or(StatusCode::BAD_GATEWAY);
        let trail = error
            .trail()
            .cloned()
            .filter(|t| t.attempts() > 0)
            .map(Box::new);
        let message = error.to_string();
        match error {
            RoutingError::InvalidRequest(invalid) => {
                ApiError::invalid_request(invalid.message, invalid.param)
            }
            RoutingError::NoRoutesAvailable { missing_vars } => ApiError::new(
                status,
                "no_routes_available",
                format!(
                    "no route is available: no provider has a key or every route is disabled. Set a provider key \
                     ({}; several keys comma-separated) in the environment or .env, or declare a provider in \
                     freerouter.toml, then restart. To try FreeRouter without any key first, start it with \
                     --demo (or FREEROUTER_DEMO=1): simulated free tiers on a database of their own",
                    missing_vars.join(", ")
                ),
            ),
            RoutingError::ModelNotFound { .. } => Self {
                param: Some("model".into()),
                ..ApiError::new(status, "model_not_found", message)
            },
            RoutingError::ContextLengthExceeded { .. } => Self {
                param: Some("messages".into()),
                trail,
                ..ApiError::new(status, "context_length_exceeded", message)
            },
            RoutingError::NoCapableRoute { .. } => {
                ApiError::new(status, "unsupported_capability", message)
            }
            RoutingError::QuotaExhausted { retry_after_ms, .. } => Self {
                retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
                trail,
                ..ApiError::new(status, "quota_exhausted", message)
            },
            RoutingError::AllRoutesFailed { .. } => Self {
                trail,
                ..ApiError::new(status, "all_routes_failed", message)
            },
            RoutingError::UpstreamRejected { message, body, .. } => Self {
                trail,
                upstream_body: body.map(Box::new),
                ..ApiError::new(status, "upstream_rejected", message)
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let passthrough = self.upstream_body.as_ref().filter(|b| {
            serde_json::from_slice::<serde_json::Value>(b).is_ok_and(|v| v.get("error").is_some())
        });
        let body = match passthrough {
            Some(upstream) => (**upstream).clone(),
            None => {
                let mut error = json!({
                    "message": self.message,
                    "type": self.error_type(),
                    "code": self.code,
                    "param": self.param,
                });
                if let Some(trail) = &self.trail {
                    error["attempts"] = json!(attempts_json(trail));
                }
                Bytes::from(json!({ "error": error }).to_string())
            }
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(trail) = &self.trail {
            headers.insert(
                "x-gateway-attempts",
                HeaderValue::from(trail.attempts() as u64),
            );
            if let Ok(value) = HeaderValue::from_str(&trail.header_value()) {
                headers.insert("x-gateway-trail", value);
            }
        }
        response
    }
}
