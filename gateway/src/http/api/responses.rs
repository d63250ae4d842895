//! `POST /v1/responses`: the Responses request translated to chat, routed like any chat request,
//! its answer (or stream) translated back, with the `X-Gateway-*` headers; stored for a
//! follow-up when the owner turned storing on. `GET`/`DELETE /v1/responses/{id}` read and
//! remove a stored one.

use super::pipeline::{Endpoint, Incoming, Routed};
use super::sse::{self, Translator};
use crate::http::error::ApiError;
use crate::http::headers;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use freerouter::api::responses::stored::{self, StoringOff};
use freerouter::api::responses::{self, ChatMessage, ResponseStream, ResponsesRequest};
use freerouter::routing::InvalidRequest;
use freerouter::store::{Store, StoredResponse};
use freerouter::time::now_ms;
use futures::future::BoxFuture;
use serde_json::json;

const RESPONSES: Endpoint = Endpoint {
    name: "responses",
    web_search: false,
};

const SETTING: &str =
    "storage.responses_retention_hours (FREEROUTER__STORAGE__RESPONSES_RETENTION_HOURS)";

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

fn storing_off(incoming: &Incoming<'_>, off: StoringOff) -> ApiError {
    let field = off.field;
    incoming.refused(
        "store_disabled",
        ApiError {
            param: Some(field.to_string()),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "store_disabled",
                format!(
                    "`{field}` needs stored responses, which this gateway keeps only when its owner sets \
                     {SETTING} above 0; send `store: false` and the whole conversation in `input` instead"
                ),
            )
        },
    )
}

/// Where a stored response goes, and what it continues.
struct Saving {
    store: Store,
    retention_hours: u64,
    /// The conversation before this turn, and this turn.
    before: Vec<ChatMessage>,
}

impl Saving {
    async fn save(
        self,
        id: String,
        reply: Vec<ChatMessage>,
        response: Box<serde_json::value::RawValue>,
    ) {
        let record = stored::record(&self.before, &[], &reply, &response);
        let now = now_ms();
        let expires = stored::expires_ms(now, self.retention_hours);
        if let Err(error) = self.store.save_response(&id, now, expires, &record).await {
            tracing::warn!(%error, "a response could not be stored");
        }
    }
}

async fn serve(incoming: &Incoming<'_>, body: Body) -> Result<Response, ApiError> {
    let (slot, bytes) = incoming.admit(body).await?;
    let request = ResponsesRequest::parse(&bytes).map_err(|e| refused(incoming, e))?;
    let state = incoming.state;
    let retention_hours = state.settings.storage.responses_retention_hours;
    let store = stored::decide(
        retention_hours,
        request.store,
        request.previous_response_id.as_deref(),
    )
    .map_err(|off| storing_off(incoming, off))?;
    let history = match &request.previous_response_id {
        Some(id) => previous(incoming, id).await?,
        None => Vec::new(),
    };
    let translated = request
        .translate(&history, store, responses::response_id(), now_ms() / 1000)
        .map_err(|e| refused(incoming, e))?;
    drop(request);
    drop(bytes);
    let chat = incoming.parse_chat(&translated.chat)?;
    let saving = store.then(|| {
        let mut before = history;
        before.extend(translated.turn);
        Saving {
            store: state.store.clone(),
            retention_hours,
            before,
        }
    });
    let mut head = translated.head;
    Ok(match incoming.route(chat, slot).await? {
        Routed::Complete(completion) => {
            let answer = responses::from_completion(&mut head, &completion.body);
            let text = answer.body.get().to_string();
            if let Some(saving) = saving {
                saving
                    .save(head.id.clone(), answer.reply, answer.body)
                    .await;
            }
            let mut response = (StatusCode::OK, text).into_response();
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
            let events = Events { stream, saving };
            let body = sse::translated((*committed).into_body(permit), opening, events);
            let mut response = Response::new(Body::from_stream(body));
            headers::served(response.headers_mut(), &served);
            headers::event_stream(response.headers_mut());
            response
        }
    })
}

/// The conversation `previous_response_id` names, or a 400 naming it.
async fn previous(incoming: &Incoming<'_>, id: &str) -> Result<Vec<ChatMessage>, ApiError> {
    let not_found = || {
        incoming.refused(
            "invalid_request",
            ApiError::invalid_request(
                format!(
                    "previous response {id:?} was not found: it was never stored, was deleted, or is older than \
                     the {} hours this gateway keeps responses",
                    incoming.state.settings.storage.responses_retention_hours
                ),
                Some("previous_response_id".into()),
            ),
        )
    };
    let stored = incoming
        .state
        .store
        .stored_response(id, now_ms())
        .await
        .map_err(|error| {
            tracing::warn!(%error, "stored responses could not be read");
            incoming.refused(
                "store_unavailable",
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "stored responses cannot be read right now; retry, or send the conversation in `input`",
                ),
            )
        })?;
    stored
        .as_ref()
        .and_then(stored::history)
        .ok_or_else(not_found)
}

/// The Responses events of a stream, stored once answered.
struct Events {
    stream: ResponseStream,
    saving: Option<Saving>,
}

impl Translator for Events {
    fn push(&mut self, data: &str) -> String {
        self.stream.push(data)
    }

    fn end(&mut self) -> String {
        self.stream.cut()
    }

    fn finishing(&mut self) -> Option<BoxFuture<'static, ()>> {
        if !self.stream.answered() {
            return None;
        }
        let saving = self.saving.take()?;
        let (id, reply, object) = (
            self.stream.id().to_string(),
            self.stream.reply(),
            self.stream.object(),
        );
        Some(Box::pin(saving.save(id, reply, object)))
    }
}

fn not_stored(id: &str, retention_hours: u64) -> ApiError {
    let why = if retention_hours == 0 {
        format!("this gateway stores no responses ({SETTING} is 0)")
    } else {
        format!("responses are kept {retention_hours} hours")
    };
    ApiError {
        param: Some("response_id".into()),
        ..ApiError::new(
            StatusCode::NOT_FOUND,
            "response_not_found",
            format!("no stored response {id:?}: {why}"),
        )
    }
}

fn unavailable(error: freerouter::store::StoreError) -> ApiError {
    tracing::warn!(%error, "stored responses could not be reached");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "stored responses cannot be reached right now; retry",
    )
}

/// `GET /v1/responses/{id}`: a stored response as it was answered.
pub async fn retrieve(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let hours = state.settings.storage.responses_retention_hours;
    match state.store.stored_response(&id, now_ms()).await {
        Ok(Some(StoredResponse { response, .. })) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            response,
        )
            .into_response(),
        Ok(None) => not_stored(&id, hours).into_response(),
        Err(error) => unavailable(error).into_response(),
    }
}

/// `DELETE /v1/responses/{id}`
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let hours = state.settings.storage.responses_retention_hours;
    match state.store.delete_response(&id, now_ms()).await {
        Ok(true) => axum::Json(json!({"id": id, "object": "response.deleted", "deleted": true}))
            .into_response(),
        Ok(false) => not_stored(&id, hours).into_response(),
        Err(error) => unavailable(error).into_response(),
    }
}
