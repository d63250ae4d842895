//! `POST /v1/chat/completions`: admit, read, parse, let the engine route, answer with the
//! upstream's own body (or its stream) and the `X-Gateway-*` headers.

use super::pipeline::{Endpoint, Incoming, Routed};
use crate::http::error::ApiError;
use crate::http::headers;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CHAT: Endpoint = Endpoint {
    name: "chat_completions",
    web_search: false,
};
const WEB_SEARCH: Endpoint = Endpoint {
    name: "chat_completions_web_search",
    web_search: true,
};

/// `POST /v1/chat/completions`
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&Incoming::new(&state, &headers, CHAT), body).await
}

/// `POST /v1/chat/completions/web-search`: the same, only through `web-search` routes, with the
/// search asked for in each provider's own form.
pub async fn web_search(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handle(&Incoming::new(&state, &headers, WEB_SEARCH), body).await
}

async fn handle(incoming: &Incoming<'_>, body: Body) -> Response {
    let mut response = serve(incoming, body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    headers::request_id(response.headers_mut(), &incoming.request_id);
    response
}

async fn serve(incoming: &Incoming<'_>, body: Body) -> Result<Response, ApiError> {
    let (slot, bytes) = incoming.admit(body).await?;
    let chat = incoming.parse_chat(&bytes)?;
    // What routing needs is parsed out; the bytes are not kept while the upstream answers.
    drop(bytes);
    Ok(match incoming.route(chat, slot).await? {
        Routed::Stream(committed, permit) => {
            let served = committed.served.clone();
            let mut response = Response::new(Body::from_stream((*committed).into_body(permit)));
            headers::served(response.headers_mut(), &served);
            headers::event_stream(response.headers_mut());
            response
        }
        Routed::Complete(completion) => {
            let mut response = (StatusCode::OK, completion.body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers::served(response.headers_mut(), &completion.served);
            response
        }
    })
}
