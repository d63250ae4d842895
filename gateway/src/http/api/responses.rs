//! `POST /v1/responses`: the Responses request translated to chat, routed like any chat request,
//! its answer (or stream) translated back, with the `X-Gateway-*` headers.

use super::pipeline::{Endpoint, Incoming, Routed};
use super::sse::{ChatEvent, translated};
use crate::http::error::ApiError;
use crate::http::headers;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use freerouter::api::responses::{self, ResponseStream, ResponsesRequest};
use freerouter::routing::InvalidRequest;
use freerouter::time::now_ms;

const RESPONSES: Endpoint = Endpoint {
    name: "responses",
    web_search: false,
};

/// `POST /v1/responses`
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let incoming = Incoming::new(&state, &headers, RESPONSES);
    let mut response = serve(&incoming, body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    headers::request_id(response.headers_mut(), &incoming.request_id);
    response
}

fn refused(incoming: &Incoming<'_>, invalid: InvalidRequest) -> ApiError {
    incoming.refused(
        "invalid_request",
        ApiError::invalid_request(invalid.message, invalid.param),
    )
}

async fn serve(incoming: &Incoming<'_>, body: Body) -> Result<Response, ApiError> {
    let (slot, bytes) = incoming.admit(body).await?;
    let request = ResponsesRequest::parse(&bytes).map_err(|e| refused(incoming, e))?;
    let retention_hours = incoming.state.settings.storage.responses_retention_hours;
    if retention_hours == 0 {
        let asked = match (&request.previous_response_id, request.store) {
            (Some(_), _) => Some("previous_response_id"),
            (None, Some(true)) => Some("store"),
            _ => None,
        };
        if let Some(field) = asked {
            return Err(incoming.refused(
                "store_disabled",
                ApiError {
                    param: Some(field.to_string()),
                    ..ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "store_disabled",
                        format!(
                            "`{field}` needs stored responses, which this gateway keeps only when its owner \
                             sets storage.responses_retention_hours (FREEROUTER__STORAGE__RESPONSES_RETENTION_HOURS) \
                             above 0; send `store: false` and the whole conversation in `input` instead"
                        ),
                    )
                },
            ));
        }
    }
    let created_at = now_ms() / 1000;
    let translated = request
        .translate(&[], false, responses::response_id(), created_at)
        .map_err(|e| refused(incoming, e))?;
    drop(request);
    drop(bytes);
    let chat = incoming.parse_chat(&translated.chat)?;
    let mut head = translated.head;
    Ok(match incoming.route(chat, slot).await? {
        Routed::Complete(completion) => {
            let answer = responses::from_completion(&mut head, &completion.body);
            let mut response = (StatusCode::OK, answer.body.get().to_string()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers::served(response.headers_mut(), &completion.served);
            response
        }
        Routed::Stream(committed, permit) => {
            let served = committed.served.clone();
            head.model = served.model.clone();
            let mut stream = ResponseStream::new(head);
            let opening = stream.opening();
            let body = translated_body((*committed).into_body(permit), opening, stream);
            let mut response = Response::new(body);
            headers::served(response.headers_mut(), &served);
            headers::event_stream(response.headers_mut());
            response
        }
    })
}

fn translated_body(
    chat: impl futures::Stream<Item = Result<axum::body::Bytes, std::convert::Infallible>>
    + Send
    + 'static,
    opening: String,
    mut stream: ResponseStream,
) -> Body {
    Body::from_stream(translated(chat, opening, move |event| match event {
        ChatEvent::Data(data) => stream.push(data),
        ChatEvent::End => stream.cut(),
    }))
}
