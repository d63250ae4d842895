//! The OpenAI-compatible adapter: `POST {base_url}/chat/completions`, bearer auth, JSON or SSE.

use super::{
    EventStream, FailureKind, ProviderAdapter, RateLimitInfo, SseParser, StreamFault, UpstreamCall,
    UpstreamFailure, UpstreamReply, classify_error_response, read_bounded,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

/// Any provider that speaks OpenAI's chat completions API without quirks.
pub struct OpenAiCompatible;

/// Error bodies are small; anything beyond this is cut.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

impl OpenAiCompatible {
    async fn send(
        &self,
        http: &reqwest::Client,
        call: UpstreamCall<'_>,
    ) -> Result<UpstreamReply, UpstreamFailure> {
        let url = format!("{}/chat/completions", call.provider.base_url);
        let mut request = http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                ACCEPT,
                if call.stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .body(serde_json::to_vec(&call.body).unwrap_or_default());
        if let Some(key) = call.key {
            request = request.header(AUTHORIZATION, format!("Bearer {}", key.secret.expose()));
        }
        let mut response = match tokio::time::timeout(call.header_timeout, request.send()).await {
            Err(_) => {
                return Err(UpstreamFailure::new(
                    FailureKind::HeaderTimeout,
                    "no response headers in time",
                ));
            }
            Ok(Err(e)) if e.is_connect() => {
                return Err(UpstreamFailure::new(
                    FailureKind::Connect,
                    "connection failed",
                ));
            }
            Ok(Err(_)) => {
                return Err(UpstreamFailure::new(
                    FailureKind::Reset,
                    "connection broke before the answer",
                ));
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let rate = RateLimitInfo::from_headers(response.headers(), call.now);
        if !response.status().is_success() {
            let body = read_bounded(&mut response, MAX_ERROR_BODY_BYTES, call.idle_timeout)
                .await
                .unwrap_or_default();
            return Err(classify_error_response(status, body, rate));
        }
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
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(json) if json.get("error").is_some() && json.get("choices").is_none() => {
                Err(classify_error_response(502, body, rate))
            }
            Ok(json) if json.is_object() => Ok(UpstreamReply::Complete { body, json, rate }),
            _ => Err(UpstreamFailure {
                rate,
                ..UpstreamFailure::new(FailureKind::Malformed, "the answer is not valid JSON")
            }),
        }
    }
}

/// Turns the response body into SSE events, bounded per event.
fn sse_events(response: reqwest::Response, max_event_bytes: usize) -> EventStream {
    let parser = SseParser::new(max_event_bytes);
    let bytes = response.bytes_stream();
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

impl ProviderAdapter for OpenAiCompatible {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn chat<'a>(
        &'a self,
        http: &'a reqwest::Client,
        call: UpstreamCall<'a>,
    ) -> BoxFuture<'a, Result<UpstreamReply, UpstreamFailure>> {
        Box::pin(self.send(http, call))
    }
}
