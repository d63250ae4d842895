//! The simulated tiers as an OpenAI-compatible upstream on a loopback port: `GET /v1/models`,
//! `POST /v1/chat/completions` (whole or streamed, `include_usage`, a prefilled assistant turn
//! continued), each tier at its own speed, within its own limits, failing on its own rhythm.

use super::limits::{Admission, Windows};
use super::tiers::{TIERS, Tier, tier};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use freerouter::time::now_ms;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Each tier's windows and how many calls it has had.
#[derive(Clone, Default)]
struct Tiers(Arc<Mutex<HashMap<&'static str, (Windows, u64)>>>);

pub async fn spawn() -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .with_state(Tiers::default());
    let server = tokio::spawn(async move {
        // Streamed words are not held for the gateway's delayed ACK.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, server))
}

async fn models() -> Json<Value> {
    let data: Vec<Value> = TIERS
        .iter()
        .map(|t| json!({"id": t.model, "object": "model", "created": 0, "owned_by": "demo"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn chat(State(tiers): State<Tiers>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default();
    let Some(tier) = tier(model) else {
        return error(
            StatusCode::NOT_FOUND,
            "model_not_found",
            &format!("The model `{model}` does not exist"),
        );
    };
    let (admission, call) = {
        let mut tiers = tiers.0.lock().unwrap_or_else(|e| e.into_inner());
        let (windows, calls) = tiers.entry(tier.model).or_default();
        let admission = windows.admit(tier, now_ms());
        *calls += 1;
        (admission, *calls - 1)
    };
    let rate = match admission {
        Admission::Refused { retry_after_ms } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                &format!("Rate limit reached for demo/{}", tier.model),
            );
            let secs = (retry_after_ms + 999) / 1000;
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        Admission::Admitted {
            limit,
            remaining,
            reset_ms,
        } => rate_headers(limit, remaining, reset_ms),
        Admission::Unlimited => HeaderMap::new(),
    };
    tokio::time::sleep(Duration::from_millis(tier.first_token_ms)).await;
    if tier.fails_on(call) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            &format!("demo/{} is overloaded right now (simulated)", tier.model),
        );
    }
    let answer = Answer::of(tier, &body);
    let mut response = if body["stream"].as_bool() == Some(true) {
        let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
        stream(tier, answer, include_usage)
    } else {
        tokio::time::sleep(Duration::from_millis(tier.word_ms * 4)).await;
        Json(answer.completion()).into_response()
    };
    response.headers_mut().extend(rate);
    response
}

/// The text to send (less what a prefilled assistant turn already holds) and its usage.
struct Answer {
    id: String,
    model: &'static str,
    text: String,
    prompt_tokens: u64,
}

impl Answer {
    fn of(tier: &Tier, body: &Value) -> Self {
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let content = |m: &Value| m["content"].as_str().unwrap_or_default().to_string();
        let question = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(content)
            .unwrap_or_default();
        let mut text = tier.answer(&question);
        if let Some(last) = messages.last().filter(|m| m["role"] == "assistant") {
            let prefill = content(last);
            if let Some(rest) = text.strip_prefix(prefill.as_str()) {
                text = rest.to_string();
            }
        }
        let prompt_chars: usize = messages.iter().map(|m| content(m).len()).sum();
        Self {
            id: format!("chatcmpl-demo-{}", uuid::Uuid::new_v4().simple()),
            model: tier.model,
            prompt_tokens: (prompt_chars as u64).div_ceil(4).max(1),
            text,
        }
    }

    fn completion_tokens(&self) -> u64 {
        self.text.split_whitespace().count() as u64
    }

    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens(),
            "total_tokens": self.prompt_tokens + self.completion_tokens(),
        })
    }

    fn completion(&self) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": now_ms() / 1000,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.text},
                "finish_reason": "stop",
            }],
            "usage": self.usage(),
        })
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": now_ms() / 1000,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }
}

/// The answer as SSE: a role chunk, a word at a time at the tier's pace, the finish, the usage
/// when asked for, `[DONE]`.
fn stream(tier: &'static Tier, answer: Answer, include_usage: bool) -> Response {
    let mut events = vec![answer.chunk(json!({"role": "assistant", "content": ""}), None)];
    events.extend(
        answer
            .text
            .split_inclusive(' ')
            .map(|word| answer.chunk(json!({"content": word}), None)),
    );
    events.push(answer.chunk(json!({}), Some("stop")));
    if include_usage {
        let mut usage = answer.chunk(json!({}), None);
        usage["choices"] = json!([]);
        usage["usage"] = answer.usage();
        events.push(usage);
    }
    let mut lines: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .collect();
    lines.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let pace = Duration::from_millis(tier.word_ms);
    let body = futures::stream::unfold(lines.into_iter(), move |mut lines| async move {
        let line = lines.next()?;
        tokio::time::sleep(pace).await;
        Some((Ok::<_, Infallible>(line), lines))
    });
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

fn rate_headers(limit: u64, remaining: u64, reset_ms: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let values = [
        ("x-ratelimit-limit-requests", limit.to_string()),
        ("x-ratelimit-remaining-requests", remaining.to_string()),
        (
            "x-ratelimit-reset-requests",
            format!("{:.1}s", reset_ms.max(0) as f64 / 1000.0),
        ),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body = json!({"error": {"message": message, "type": kind, "code": code, "param": null}});
    (status, Json(body)).into_response()
}
