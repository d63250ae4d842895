//! Why the engine could not serve a request, in terms the HTTP face maps to statuses.

use super::request::InvalidRequest;
use super::trail::Trail;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("{0}")]
    InvalidRequest(#[from] InvalidRequest),
    /// No route can be called at all; `missing_vars` are the variables that would add some.
    #[error("no route is configured or enabled")]
    NoRoutesAvailable { missing_vars: Vec<String> },
    /// A strict request named a model that is unknown or disabled.
    #[error("the model `{model}` does not exist or is disabled")]
    ModelNotFound { model: String },
    #[error(
        "the prompt ({needed_tokens} tokens estimated) is larger than every eligible route's context window"
    )]
    ContextLengthExceeded { needed_tokens: u64, trail: Trail },
    /// No enabled route has what the request needs.
    #[error("no enabled route supports what this request needs: {}", tags.join(", "))]
    NoCapableRoute { tags: Vec<String> },
    /// Every eligible route is cooling or out of quota; the soonest one is back in `retry_after_ms`.
    #[error("every eligible route is cooling or out of quota")]
    QuotaExhausted { retry_after_ms: u64, trail: Trail },
    #[error("every route tried failed upstream")]
    AllRoutesFailed { trail: Trail },
    /// The upstream refused the request itself (a content policy, an invalid parameter): passed on as-is.
    #[error("the upstream refused the request: {message}")]
    UpstreamRejected {
        status: u16,
        message: String,
        body: Option<Bytes>,
        trail: Trail,
    },
}

impl RoutingError {
    /// A low-cardinality label for metrics and the request log.
    pub fn kind(&self) -> &'static str {
        match self {
            RoutingError::InvalidRequest(_) => "invalid_request",
            RoutingError::NoRoutesAvailable { .. } => "no_routes_available",
            RoutingError::ModelNotFound { .. } => "model_not_found",
            RoutingError::ContextLengthExceeded { .. } => "context_length_exceeded",
            RoutingError::NoCapableRoute { .. } => "unsupported_capability",
            RoutingError::QuotaExhausted { .. } => "quota_exhausted",
            RoutingError::AllRoutesFailed { .. } => "all_routes_failed",
            RoutingError::UpstreamRejected { .. } => "upstream_rejected",
        }
    }

    pub fn trail(&self) -> Option<&Trail> {
        match self {
            RoutingError::ContextLengthExceeded { trail, .. }
            | RoutingError::QuotaExhausted { trail, .. }
            | RoutingError::AllRoutesFailed { trail }
            | RoutingError::UpstreamRejected { trail, .. } => Some(trail),
            _ => None,
        }
    }
}
