//! `POST /v1/messages` and `/v1/messages/count_tokens` (Anthropic's Messages API): admit, read,
//! translate to a chat request (`freerouter::api::anthropic`), let the engine route it, translate
//! its answer back; errors in Anthropic's shape.

use super::anthropic::error_response;
use super::pipeline::{Endpoint, Incoming, Routed};
use super::sse::{self, Translator};
use crate::http::error::ApiError;
use crate::http::headers;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use freerouter::api::anthropic::{self, InvalidMessages, StreamTranslator};

const MESSAGES: Endpoint = Endpoint {
    name: "messages",
    web_search: false,
};
const COUNT_TOKENS: Endpoint = Endpoint {
    name: "messages_count_tokens",
    web_search: false,
};

/// `POST /v1/messages`
pub async fn messages(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let incoming = Incoming::new(&state, &headers, MESSAGES);
    answer(&incoming, serve(&incoming, body).await)
}

/// `POST /v1/messages/count_tokens`: the gateway's prompt estimate, no upstream asked.
pub async fn count_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let incoming = Incoming::new(&state, &headers, COUNT_TOKENS);
    let counted = async {
        let (slot, bytes) = incoming.admit(body).await?;
        drop(slot);
        anthropic::count_tokens(&bytes, &state.settings.anthropic.models)
            .map(|count| Json(count).into_response())
            .map_err(|invalid| refused(&incoming, invalid))
    };
    answer(&incoming, counted.await)
}

const STRICT: &str = "x-freerouter-strict";

fn without(headers: &HeaderMap, name: &str) -> HeaderMap {
    let mut headers = headers.clone();
    headers.remove(name);
    headers
}

fn answer(incoming: &Incoming<'_>, served: Result<Response, ApiError>) -> Response {
    let mut response = served.unwrap_or_else(|error| error_response(error, &incoming.request_id));
    headers::request_id(response.headers_mut(), &incoming.request_id);
    response
}

fn refused(incoming: &Incoming<'_>, invalid: InvalidMessages) -> ApiError {
    incoming.refused(
        "invalid_request",
        ApiError::invalid_request(invalid.message, invalid.param),
    )
}

async fn serve(incoming: &Incoming<'_>, body: Body) -> Result<Response, ApiError> {
    let (slot, bytes) = incoming.admit(body).await?;
    let tiers = &incoming.state.settings.anthropic.models;
    let translated =
        anthropic::translate_request(&bytes, tiers).map_err(|e| refused(incoming, e))?;
    drop(bytes);
    // A Claude name names no route here, so `X-FreeRouter-Strict` cannot hold it to one.
    let relaxed: HeaderMap;
    let incoming = match translated.asked.model.claude && incoming.headers.contains_key(STRICT) {
        true => {
            relaxed = without(incoming.headers, STRICT);
            &Incoming {
                headers: &relaxed,
                request_id: incoming.request_id.clone(),
                ..*incoming
            }
        }
        false => incoming,
    };
    let chat = incoming.parse_chat(&translated.body)?;
    drop(translated.body);
    let estimate = chat.estimated_prompt_tokens();
    let id = format!("msg_{}", incoming.request_id.trim_start_matches("req_"));
    Ok(match incoming.route(chat, slot).await? {
        Routed::Stream(committed, permit) => {
            let served = committed.served.clone();
            let mut translator =
                StreamTranslator::new(id, served.model.clone(), estimate, translated.asked);
            let opening = translator.start();
            let events = sse::translated((*committed).into_body(permit), opening, translator);
            let mut response = Response::new(Body::from_stream(events));
            headers::served(response.headers_mut(), &served);
            headers::event_stream(response.headers_mut());
            response
        }
        Routed::Complete(completion) => {
            let message = anthropic::to_message(
                &completion.body,
                &id,
                &completion.served.model,
                &translated.asked,
            )
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "bad_upstream_answer",
                    e.to_string(),
                )
            })?;
            let mut response = Json(message).into_response();
            headers::served(response.headers_mut(), &completion.served);
            response
        }
    })
}

impl Translator for StreamTranslator {
    fn push(&mut self, data: &str) -> String {
        StreamTranslator::push(self, data)
    }

    fn end(&mut self) -> String {
        StreamTranslator::end(self)
    }
}
