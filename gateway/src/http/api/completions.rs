//! `POST /v1/completions` (legacy): the prompt translated to a chat request, routed like any, the
//! answer (or stream) given back in the `text_completion` shape.

use super::pipeline::{Endpoint, Incoming, Routed};
use super::sse::{Translator, translated};
use crate::http::error::ApiError;
use crate::http::headers;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use freerouter::api::completions::{self, CompletionStream};
use freerouter::time::now_ms;

const COMPLETIONS: Endpoint = Endpoint {
    name: "completions",
    web_search: false,
};

/// `POST /v1/completions`
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let incoming = Incoming::new(&state, &headers, COMPLETIONS);
    let mut response = serve(&incoming, body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    headers::request_id(response.headers_mut(), &incoming.request_id);
    response
}

async fn serve(incoming: &Incoming<'_>, body: Body) -> Result<Response, ApiError> {
    let (slot, bytes) = incoming.admit(body).await?;
    let request = completions::translate(&bytes).map_err(|invalid| {
        incoming.refused(
            "invalid_request",
            ApiError::invalid_request(invalid.message, invalid.param),
        )
    })?;
    drop(bytes);
    let chat = incoming.parse_chat(&request.chat)?;
    let id = format!("cmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now_ms() / 1000;
    Ok(match incoming.route(chat, slot).await? {
        Routed::Complete(completion) => {
            let answer = completions::from_completion(
                &completion.body,
                &id,
                created,
                request.echo.as_deref(),
            );
            let mut response = (StatusCode::OK, Json(answer)).into_response();
            headers::served(response.headers_mut(), &completion.served);
            response
        }
        Routed::Stream(committed, permit) => {
            let served = committed.served.clone();
            let stream = Chunks(CompletionStream::new(id, created, request.echo));
            let body = translated((*committed).into_body(permit), String::new(), stream);
            let mut response = Response::new(Body::from_stream(body));
            headers::served(response.headers_mut(), &served);
            headers::event_stream(response.headers_mut());
            response
        }
    })
}

/// Legacy completion chunks, each its own `data:` event.
struct Chunks(CompletionStream);

impl Translator for Chunks {
    fn push(&mut self, data: &str) -> String {
        self.0
            .push(data)
            .map(|data| format!("data: {data}\n\n"))
            .unwrap_or_default()
    }

    fn end(&mut self) -> String {
        String::new()
    }
}
