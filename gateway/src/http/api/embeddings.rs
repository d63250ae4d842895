//! `POST /v1/embeddings`: admit, read, parse, let the engine serve it within its one embedding
//! model, answer with the upstream's own body (its vectors packed as base64 when the client asked
//! for that) and the `X-Gateway-*` headers; refusals in OpenAI's error shape, each naming the model.

use super::pipeline::{Endpoint, Incoming};
use crate::http::error::ApiError;
use crate::http::headers;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use freerouter::api::embeddings::pack_base64;
use freerouter::routing::RoutingError;
use freerouter::routing::embeddings::{
    ENDPOINT, EmbedRequest, EmbeddingsError, EmbeddingsRequest, Encoding,
};

const EMBEDDINGS: Endpoint = Endpoint {
    name: ENDPOINT,
    web_search: false,
};

/// `POST /v1/embeddings`
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let incoming = Incoming::new(&state, &headers, EMBEDDINGS);
    let mut response = serve(&incoming, body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    headers::request_id(response.headers_mut(), &incoming.request_id);
    response
}

async fn serve(incoming: &Incoming<'_>, body: Body) -> Result<Response, ApiError> {
    let (slot, bytes) = incoming.admit(body).await?;
    let engine = &incoming.state.engine;
    let embeddings = EmbeddingsRequest::parse(&bytes, &engine.fields).map_err(|invalid| {
        incoming.refused(
            "invalid_request",
            ApiError::invalid_request(invalid.message, invalid.param),
        )
    })?;
    drop(bytes);
    let encoding = embeddings.encoding;
    let request = EmbedRequest {
        embeddings,
        request_id: incoming.request_id.clone(),
        received: incoming.received,
    };
    let embedded = engine.embed(&request).await.map_err(api_error)?;
    drop(slot);
    let body = match encoding {
        Encoding::Float => embedded.body,
        Encoding::Base64 => pack_base64(&embedded.body).map_err(|error| {
            tracing::warn!(%error, route = %embedded.served.route_id, "an embeddings answer could not be packed");
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_malformed", error.to_string())
        })?,
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers::served(response.headers_mut(), &embedded.served);
    Ok(response)
}

/// OpenAI's error shape for an embeddings refusal: the engine's status and code, the message
/// naming the model (an upstream's own refusal is passed on as it came).
fn api_error(error: EmbeddingsError) -> ApiError {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let message = error.to_string();
    let param = error.param().map(str::to_string);
    match error {
        EmbeddingsError::Routing { error, .. } => {
            let passed_on = matches!(error, RoutingError::UpstreamRejected { .. });
            let api = ApiError::from(error);
            if passed_on {
                return api;
            }
            ApiError {
                message,
                param: param.or(api.param),
                ..api
            }
        }
        error => ApiError {
            param,
            ..ApiError::new(status, error.kind(), message)
        },
    }
}
