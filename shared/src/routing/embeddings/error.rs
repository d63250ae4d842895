//! Why an embeddings request could not be served. Each reason names the embedding model, because
//! the answer is never another model's vectors: a client told "the model is cooling" can wait;
//! one given other vectors would store them next to incomparable ones without knowing.

use crate::routing::{RoutingError, error_status};

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingsError {
    /// The name is no route's, alias or upstream id.
    #[error(
        "`{model}` is not an embedding model this gateway serves; ask for `auto` (the default embedding model) or one of: {}",
        known.join(", ")
    )]
    UnknownModel { model: String, known: Vec<String> },
    /// The name is a chat model's.
    #[error(
        "`{model}` is a chat model; /v1/embeddings serves only routes tagged `embeddings` (ask for `auto` or one of: {})",
        known.join(", ")
    )]
    NotAnEmbeddingModel { model: String, known: Vec<String> },
    /// No embeddings route can be called at all; `missing_vars` would add some.
    #[error("no embeddings route is configured or enabled")]
    NoEmbeddingRoutes { missing_vars: Vec<String> },
    /// `routing.default_embedding_model` names no embeddings route.
    #[error(
        "routing.default_embedding_model is `{setting}`, which names no route tagged `embeddings`; fix the setting or ask for a model by name"
    )]
    DefaultModelMissing { setting: String },
    /// Every route of the model is disabled, marked outdated, or on a provider without a key.
    #[error(
        "no provider serving the embedding model `{model}` can be called: {why}; vectors of another model are never served in its place"
    )]
    ModelUnavailable { model: String, why: String },
    /// `dimensions` was asked of a model that does not take it.
    #[error(
        "the embedding model `{model}` does not take `dimensions` (no route serving it is tagged `dimensions`)"
    )]
    NoDimensions { model: String },
    /// The model's providers were tried (or are all resting): the engine's reason, for this model.
    #[error("{}", routing_message(model, error))]
    Routing { model: String, error: RoutingError },
}

fn routing_message(model: &str, error: &RoutingError) -> String {
    let not_another = "vectors of another model are never served in its place";
    match error {
        RoutingError::QuotaExhausted { .. } => format!(
            "every provider serving the embedding model `{model}` is cooling or out of quota; {not_another}"
        ),
        RoutingError::AllRoutesFailed { .. } => format!(
            "every provider serving the embedding model `{model}` failed upstream; {not_another}"
        ),
        RoutingError::ContextLengthExceeded { needed_tokens, .. } => format!(
            "an input ({needed_tokens} tokens estimated) is longer than every window of the embedding model `{model}`"
        ),
        other => other.to_string(),
    }
}

impl EmbeddingsError {
    /// A low-cardinality label for metrics and the request log.
    pub fn kind(&self) -> &'static str {
        match self {
            EmbeddingsError::UnknownModel { .. } | EmbeddingsError::NotAnEmbeddingModel { .. } => {
                "model_not_found"
            }
            EmbeddingsError::NoEmbeddingRoutes { .. }
            | EmbeddingsError::DefaultModelMissing { .. } => "no_routes_available",
            EmbeddingsError::ModelUnavailable { .. } => "model_unavailable",
            EmbeddingsError::NoDimensions { .. } => "unsupported_capability",
            EmbeddingsError::Routing { error, .. } => error.kind(),
        }
    }

    /// The HTTP status it maps to.
    pub fn status(&self) -> u16 {
        match self {
            EmbeddingsError::UnknownModel { .. } | EmbeddingsError::NotAnEmbeddingModel { .. } => {
                404
            }
            EmbeddingsError::NoEmbeddingRoutes { .. }
            | EmbeddingsError::DefaultModelMissing { .. }
            | EmbeddingsError::ModelUnavailable { .. } => 503,
            EmbeddingsError::NoDimensions { .. } => 400,
            EmbeddingsError::Routing { error, .. } => error_status(error),
        }
    }

    /// The request field the error is about, when it is one.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            EmbeddingsError::UnknownModel { .. } | EmbeddingsError::NotAnEmbeddingModel { .. } => {
                Some("model")
            }
            EmbeddingsError::NoDimensions { .. } => Some("dimensions"),
            EmbeddingsError::Routing {
                error: RoutingError::ContextLengthExceeded { .. },
                ..
            } => Some("input"),
            _ => None,
        }
    }
}
