//! `POST …/chat/completions`: count and record the call, apply the rate limits, draw its behaviour,
//! answer.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::behavior::Behavior;
use super::completion;
use super::faults;
use super::limits::Grant;
use super::model::{CallPlan, RecordedRequest};
use super::reply::{Meta, Reply, continuation};
use super::request::{self, ChatRequest};
use super::respond;
use super::state::{SimState, unix_now};
use super::stream::{self, Ending, Pacing, Step};

/// The body [`Behavior::MalformedJson`] sends to a non-streaming request.
const MALFORMED_BODY: &str = r#"{"id": "broken"#;

/// Answers one chat request sent to `path`; counts it as served when the answer is 2xx.
pub(crate) async fn completions(
    state: SimState,
    path: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = handle(&state, path, headers, body).await;
    if response.status().is_success() {
        state.count_served();
    }
    response
}

async fn handle(state: &SimState, path: String, headers: HeaderMap, body: Bytes) -> Response {
    state.count_call();
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            let message = format!("We could not parse the JSON body of your request: {e}");
            return respond::error(StatusCode::BAD_REQUEST, "invalid_json", &message);
        }
    };
    let id = match request::model_id(&body) {
        Ok(id) => id.to_string(),
        Err(message) => {
            return respond::error(StatusCode::BAD_REQUEST, "invalid_request", &message);
        }
    };
    let Some(model) = state.find(&id) else {
        let message = format!("The model `{id}` does not exist");
        return respond::error(StatusCode::NOT_FOUND, "model_not_found", &message);
    };
    let parsed = ChatRequest::parse(&body);
    let key = bearer_key(&headers);
    let recorded = RecordedRequest {
        body,
        headers: header_pairs(&headers),
        path,
        at: Instant::now(),
    };
    model.record_call(recorded, state.recording());
    // Only well-formed requests are admitted and counted; the others get their 400 below.
    let mut grant = match &parsed {
        Ok(request) => match state.admit(&key, &model, request.prompt_tokens(), request.max_tokens)
        {
            Ok(grant) => grant,
            Err(refusal) => return respond::limit_refusal(&refusal),
        },
        Err(_) => Grant::default(),
    };
    let plan = model.plan();
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    match parsed {
        Ok(request) => {
            let mut response = answer(state, &request, plan, &mut grant).await;
            if response.status().is_success() {
                let headers = grant.headers.iter();
                respond::add_headers(
                    &mut response,
                    headers.map(|(name, value)| (name.as_str(), value.as_str())),
                );
            }
            response
        }
        Err(message) => respond::error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    }
}

/// The key of `Authorization: Bearer KEY`; `""` without one.
pub(crate) fn bearer_key(headers: &HeaderMap) -> String {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return String::new();
    };
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim().to_string(),
        _ => String::new(),
    }
}

/// Applies the drawn behaviour to a well-formed, admitted request; counts the completion tokens of
/// the answer it produces in `grant`'s windows.
async fn answer(
    state: &SimState,
    request: &ChatRequest,
    plan: CallPlan,
    grant: &mut Grant,
) -> Response {
    match &plan.behavior {
        Behavior::Status {
            status,
            body,
            headers,
        } => return respond::scripted(*status, body, headers),
        Behavior::HangBeforeHeaders => {
            state.until_shutdown().await;
            let cut = stream::body(vec![Step::Cut], state.clone());
            return respond::with_body(StatusCode::SERVICE_UNAVAILABLE, "application/json", cut);
        }
        _ => {}
    }
    if let Some(refusal) = refusal(request, &plan) {
        return refusal;
    }
    let reply = match &plan.behavior {
        Behavior::ToolCall { name, arguments } => Reply::ToolCall {
            name: name.clone(),
            arguments: arguments.clone(),
        },
        Behavior::EmptyCompletion => Reply::Text(String::new()),
        Behavior::InvalidUtf8 => Reply::Text(format!(
            "{}{}",
            continuation(&plan.answer, request.prefill.as_deref()),
            faults::UTF8_MARK
        )),
        _ => Reply::Text(continuation(&plan.answer, request.prefill.as_deref())),
    };
    state.complete(grant, reply.completion_tokens());
    let meta = Meta {
        id: state.next_completion_id(),
        created: unix_now(),
        model: plan.response_model.clone(),
        prompt_tokens: request.prompt_tokens(),
    };
    let mut response = if request.stream {
        streamed(state, request, &plan, &meta, &reply)
    } else {
        whole(state, &plan.behavior, &meta, &reply)
    };
    if let Behavior::OversizedHeaders { bytes } = plan.behavior {
        let padding = HeaderValue::try_from("a".repeat(bytes)).expect("ASCII is a header value");
        response.headers_mut().insert("x-sim-padding", padding);
    }
    response
}

/// The 400s a real model gives before generating: a refused prefill, a prompt over the window.
fn refusal(request: &ChatRequest, plan: &CallPlan) -> Option<Response> {
    if request.prefill.is_some() && plan.refuse_prefill {
        return Some(respond::error(
            StatusCode::BAD_REQUEST,
            "prefill_not_supported",
            "assistant prefill is not supported by this model",
        ));
    }
    let window = plan.context_window?;
    let prompt = request.prompt_tokens();
    let requested = prompt + request.max_tokens;
    (requested > window).then(|| {
        let message = format!(
            "This model's maximum context length is {window} tokens. However, you requested \
             {requested} tokens ({prompt} in the messages, {} in the completion). Please reduce \
             the length of the messages or completion.",
            request.max_tokens
        );
        respond::error(StatusCode::BAD_REQUEST, "context_length_exceeded", &message)
    })
}

/// A non-streaming answer.
fn whole(state: &SimState, behavior: &Behavior, meta: &Meta, reply: &Reply) -> Response {
    let stop = match behavior {
        Behavior::MalformedJson => {
            return respond::with_body(
                StatusCode::OK,
                "application/json",
                Body::from(MALFORMED_BODY),
            );
        }
        Behavior::CutAfter { .. } => Step::Cut,
        Behavior::StallAfter { .. } => Step::Stall,
        Behavior::HugeBody { bytes } | Behavior::HugeEvent { bytes } => {
            let body = stream::body(faults::huge_completion(meta, *bytes), state.clone());
            return respond::with_body(StatusCode::OK, "application/json", body);
        }
        Behavior::SlowDrip {
            piece_bytes,
            interval_ms,
        } => {
            let full = Bytes::from(completion::body(meta, reply).to_string());
            let interval = Duration::from_millis(*interval_ms);
            let steps = faults::drip(vec![Step::Send(full)], *piece_bytes, interval);
            let body = stream::body(steps, state.clone());
            return respond::with_body(StatusCode::OK, "application/json", body);
        }
        Behavior::InvalidUtf8 => {
            let full = Bytes::from(completion::body(meta, reply).to_string());
            let body = stream::body(faults::corrupt_utf8(vec![Step::Send(full)]), state.clone());
            return respond::with_body(StatusCode::OK, "application/json", body);
        }
        _ => return respond::json(StatusCode::OK, &completion::body(meta, reply)),
    };
    // Headers and the first half of the body, then the cut or the stall.
    let full = Bytes::from(completion::body(meta, reply).to_string());
    let half = full.slice(..full.len() / 2);
    let body = stream::body(vec![Step::Send(half), stop], state.clone());
    respond::with_body(StatusCode::OK, "application/json", body)
}

/// A streaming answer.
fn streamed(
    state: &SimState,
    request: &ChatRequest,
    plan: &CallPlan,
    meta: &Meta,
    reply: &Reply,
) -> Response {
    let ending = match plan.behavior {
        Behavior::MalformedJson => {
            return respond::sse(stream::body(stream::garbage_steps(), state.clone()));
        }
        Behavior::BrokenSseEvent => Ending::BrokenAfterFirst,
        Behavior::CutAfter { chunks } => Ending::CutAfter(chunks),
        Behavior::StallAfter { chunks } => Ending::StallAfter(chunks),
        Behavior::NoDone => Ending::NoDone,
        _ => Ending::Complete,
    };
    let pacing = Pacing {
        first_token_delay: plan.first_token_delay,
        chunk_delay: plan.chunk_delay,
    };
    let steps = match plan.behavior {
        Behavior::HugeBody { bytes } => faults::many_large_events(meta, bytes),
        Behavior::HugeEvent { bytes } => faults::huge_event(meta, bytes),
        Behavior::TinyEventFlood { events } => faults::tiny_event_flood(meta, events),
        _ => stream::answer_steps(meta, reply, request.include_usage, pacing, ending),
    };
    let steps = match plan.behavior {
        Behavior::EmptyEventFlood { events } => faults::empty_event_flood(meta, steps, events),
        Behavior::SlowDrip {
            piece_bytes,
            interval_ms,
        } => faults::drip(steps, piece_bytes, Duration::from_millis(interval_ms)),
        Behavior::InvalidUtf8 => faults::corrupt_utf8(steps),
        _ => steps,
    };
    respond::sse(stream::body(steps, state.clone()))
}

/// Header names (lower-case) and values, in the order received.
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), value)
        })
        .collect()
}
