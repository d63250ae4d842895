//! Why the router could not start or answer: the same reasons, statuses and codes the gateway
//! answers with (OpenAI's error codes), as one typed error.

use crate::config::ConfigError;
use crate::routing::embeddings::EmbeddingsError;
use crate::routing::{InvalidRequest, RoutingError, error_status};
use crate::runtime::RuntimeError;
use std::path::PathBuf;

/// Why the router could not start, or could not answer a request.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigFile {
        /// The file named.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The configuration is invalid (the message never holds a secret).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store or the HTTP client could not be started.
    #[error(transparent)]
    Start(#[from] RuntimeError),
    /// The request was refused before or while routing: the gateway would answer it with
    /// `status` and `code` (`invalid_request`, `quota_exhausted`, `all_routes_failed`, …).
    #[error("{code} ({status}): {message}")]
    Refused {
        /// The HTTP status the gateway would answer with.
        status: u16,
        /// OpenAI-style error code.
        code: &'static str,
        /// What went wrong, for a person.
        message: String,
        /// The request field at fault, when there is one.
        param: Option<String>,
        /// For `quota_exhausted`: when the soonest route is back, in seconds.
        retry_after_s: Option<u64>,
        /// The routes tried and what each answered (`route:result,…`), when any was tried.
        trail: Option<String>,
    },
    /// A committed stream ended with an error no route could rescue (the gateway's error event).
    #[error("the stream failed: {code}: {message}")]
    StreamFailed {
        /// The error event's code.
        code: String,
        /// The error event's message.
        message: String,
    },
    /// An answer that could not be read.
    #[error("malformed answer: {message}")]
    Malformed {
        /// What was wrong with it.
        message: String,
    },
}

impl RouterError {
    /// The error code, as the gateway's error body would carry it (`None` for start-up errors).
    pub fn code(&self) -> Option<&str> {
        match self {
            RouterError::Refused { code, .. } => Some(code),
            RouterError::StreamFailed { code, .. } => Some(code),
            RouterError::Malformed { .. } => Some("upstream_malformed"),
            _ => None,
        }
    }
}

impl From<RoutingError> for RouterError {
    fn from(error: RoutingError) -> Self {
        let status = error_status(&error);
        let trail = error
            .trail()
            .filter(|t| t.attempts() > 0)
            .map(|t| t.header_value());
        let code = error.kind();
        let retry_after_s = match &error {
            RoutingError::QuotaExhausted { retry_after_ms, .. } => {
                Some(retry_after_ms.div_ceil(1000).max(1))
            }
            _ => None,
        };
        let param = match &error {
            RoutingError::InvalidRequest(invalid) => invalid.param.clone(),
            RoutingError::ModelNotFound { .. } => Some("model".into()),
            RoutingError::ContextLengthExceeded { .. } => Some("messages".into()),
            _ => None,
        };
        let message = match error {
            RoutingError::NoRoutesAvailable { missing_vars } => format!(
                "no route is available: no provider has a key or every route is disabled; set one of {}",
                missing_vars.join(", ")
            ),
            RoutingError::UpstreamRejected { message, .. } => message,
            other => other.to_string(),
        };
        RouterError::Refused {
            status,
            code,
            message,
            param,
            retry_after_s,
            trail,
        }
    }
}

impl From<EmbeddingsError> for RouterError {
    fn from(error: EmbeddingsError) -> Self {
        let status = error.status();
        let code = error.kind();
        let message = error.to_string();
        let param = error.param().map(str::to_string);
        match error {
            EmbeddingsError::Routing { error, .. } => {
                let passed_on = matches!(error, RoutingError::UpstreamRejected { .. });
                match RouterError::from(error) {
                    RouterError::Refused {
                        status,
                        code,
                        message: routing_message,
                        param: routing_param,
                        retry_after_s,
                        trail,
                    } => RouterError::Refused {
                        status,
                        code,
                        message: if passed_on { routing_message } else { message },
                        param: param.or(routing_param),
                        retry_after_s,
                        trail,
                    },
                    other => other,
                }
            }
            _ => RouterError::Refused {
                status,
                code,
                message,
                param,
                retry_after_s: None,
                trail: None,
            },
        }
    }
}

impl From<InvalidRequest> for RouterError {
    fn from(invalid: InvalidRequest) -> Self {
        RouterError::Refused {
            status: 400,
            code: "invalid_request",
            message: invalid.message,
            param: invalid.param,
            retry_after_s: None,
            trail: None,
        }
    }
}

impl From<serde_json::Error> for RouterError {
    fn from(error: serde_json::Error) -> Self {
        RouterError::Refused {
            status: 400,
            code: "invalid_request",
            message: format!("the request body is not JSON: {error}"),
            param: None,
            retry_after_s: None,
            trail: None,
        }
    }
}
