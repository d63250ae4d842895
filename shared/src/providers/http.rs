//! The HTTP flow every adapter shares: send a chat request through the adapter's hooks, read the
//! answer within its bounds, classify failures; and list a provider's models. [`post`] is the part
//! the embeddings flow (`providers::embeddings`) shares.

use super::answer::CompletionInfo;
use super::{
    EventStream, FailureKind, HttpClient, ProviderAdapter, RateLimitInfo, SendError, SseParser,
    StreamFault, UpstreamCall, UpstreamFailure, UpstreamReply, UpstreamResponse,
    classify_error_response, read_bounded,
};
use crate::catalog::{ApiKey, Provider};
use ::http::header::{ACCEPT, CONTENT_TYPE};
use futures::StreamExt;
use std::time::Duration;

/// Error bodies are small; anything beyond this is cut.
pub(super) const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Sends one chat request through `adapter`'s hooks and classifies the answer.
pub async fn send_chat(
    adapter: &dyn ProviderAdapter,
    http: &HttpClient,
    call: UpstreamCall<'_>,
) -> Result<UpstreamReply, UpstreamFailure> {
    let now = call.now;
    send(adapter, http, call)
        .await
        .map_err(|failure| adapter.refine_failure(failure, now))
}

async fn send(
    adapter: &dyn ProviderAdapter,
    http: &HttpClient,
    mut call: UpstreamCall<'_>,
) -> Result<UpstreamReply, UpstreamFailure> {
    let url = adapter.chat_url(call.provider);
    let mut body = std::mem::take(&mut call.body);
    adapter.prepare_body(&mut body);
    let accept = if call.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let (mut response, rate) = post(adapter, http, &url, body.to_bytes(), accept, &call).await?;
    let status = response.status().as_u16();
    if call.stream {
        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            // A JSON error or a non-streamed answer where a stream was asked for.
            let body = read_bounded(&mut response, MAX_ERROR_BODY_BYTES, call.idle_timeout)
                .await
                .unwrap_or_default();
            let mut failure = classify_error_response(status, body, rate);
            failure.kind = FailureKind::Malformed;
            return Err(failure);
        }
        let events = sse_events(response, call.max_body_bytes);
        return Ok(UpstreamReply::Stream { events, rate });
    }
    let body = read_bounded(&mut response, call.max_body_bytes, call.idle_timeout)
        .await
        .map_err(|kind| UpstreamFailure {
            rate: rate.clone(),
            ..UpstreamFailure::new(kind, "the answer could not be read whole")
        })?;
    match CompletionInfo::parse(&body) {
        Some(info) if info.is_error && !info.has_choices => {
            Err(classify_error_response(502, body, rate))
        }
        Some(info) => Ok(UpstreamReply::Complete { body, info, rate }),
        None => Err(UpstreamFailure {
            rate,
            ..UpstreamFailure::new(FailureKind::Malformed, "the answer is not valid JSON")
        }),
    }
}

/// Posts a JSON body through the adapter's headers and waits for the answer's headers (within
/// the call's header timeout): the response when it is 2xx, else the failure it is, its error
/// body read within bounds and classified. `call.body` is not read (the caller sends `body`).
pub(super) async fn post(
    adapter: &dyn ProviderAdapter,
    http: &HttpClient,
    url: &str,
    body: Vec<u8>,
    accept: &'static str,
    call: &UpstreamCall<'_>,
) -> Result<(UpstreamResponse, RateLimitInfo), UpstreamFailure> {
    let request = http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, accept)
        .body(body);
    let request = adapter.headers(request, call.key);
    let mut response = match tokio::time::timeout(call.header_timeout, http.send(request)).await {
        Err(_) => {
            return Err(UpstreamFailure::new(
                FailureKind::HeaderTimeout,
                "no response headers in time",
            ));
        }
        Ok(Err(SendError::Connect | SendError::Invalid(_))) => {
            return Err(UpstreamFailure::new(
                FailureKind::Connect,
                "connection failed",
            ));
        }
        Ok(Err(SendError::Broken)) => {
            return Err(UpstreamFailure::new(
                FailureKind::Reset,
                "connection broke before the answer",
            ));
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    let mut rate = RateLimitInfo::from_headers(response.headers(), call.now);
    if !rate.is_empty() {
        rate.whole_key = adapter.rate_headers_cover_the_key();
    }
    if !response.status().is_success() {
        let body = read_bounded(&mut response, MAX_ERROR_BODY_BYTES, call.idle_timeout)
            .await
            .unwrap_or_default();
        return Err(classify_error_response(status, body, rate));
    }
    Ok((response, rate))
}

/// Turns the response body into SSE events, bounded per event.
fn sse_events(response: UpstreamResponse, max_event_bytes: usize) -> EventStream {
    let parser = SseParser::new(max_event_bytes);
    let bytes = response.into_chunks().boxed();
    futures::stream::unfold(
        (bytes, parser, std::collections::VecDeque::new(), false),
        |(mut bytes, mut parser, mut queue, mut ended)| async move {
            loop {
                if let Some(event) = queue.pop_front() {
                    return Some((Ok(event), (bytes, parser, queue, ended)));
                }
                if ended {
                    return None;
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => match parser.push(&chunk) {
                        Ok(events) => queue.extend(events),
                        Err(_) => {
                            ended = true;
                            return Some((
                                Err(StreamFault::TooLarge),
                                (bytes, parser, queue, ended),
                            ));
                        }
                    },
                    Some(Err(e)) => {
                        ended = true;
                        let fault = StreamFault::Io(e.to_string());
                        return Some((Err(fault), (bytes, parser, queue, ended)));
                    }
                    None => {
                        ended = true;
                        queue.extend(parser.finish());
                    }
                }
            }
        },
    )
    .boxed()
}

/// Lists the model ids a provider offers (as requests name them), with the raw entries.
pub async fn list_models(
    adapter: &dyn ProviderAdapter,
    http: &HttpClient,
    provider: &Provider,
    key: Option<&ApiKey>,
    timeout: Duration,
) -> Result<Vec<(String, serde_json::Value)>, UpstreamFailure> {
    let request = adapter.headers(http.get(&adapter.models_url(provider)), key);
    let mut response = match tokio::time::timeout(timeout, http.send(request)).await {
        Err(_) => {
            return Err(UpstreamFailure::new(
                FailureKind::HeaderTimeout,
                "no answer in time",
            ));
        }
        Ok(Err(_)) => {
            return Err(UpstreamFailure::new(
                FailureKind::Connect,
                "connection failed",
            ));
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    let body = read_bounded(&mut response, 8 * 1024 * 1024, timeout)
        .await
        .map_err(|kind| UpstreamFailure::new(kind, "the listing could not be read"))?;
    if !(200..300).contains(&status) {
        return Err(adapter.refine_failure(
            classify_error_response(status, body, RateLimitInfo::default()),
            crate::time::now_ms(),
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| UpstreamFailure::new(FailureKind::Malformed, "the listing is not JSON"))?;
    let entries = json
        .get("data")
        .or_else(|| json.get("models"))
        .and_then(|d| d.as_array())
        .ok_or_else(|| {
            UpstreamFailure::new(FailureKind::Malformed, "the listing has no data array")
        })?;
    Ok(entries
        .iter()
        .filter_map(|entry| {
            let id = entry.get("id").or_else(|| entry.get("name"))?.as_str()?;
            Some((adapter.model_id_from_listing(id), entry.clone()))
        })
        .collect())
}
