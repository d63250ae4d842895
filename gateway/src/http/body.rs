//! Request bodies read whole within a deadline and a size: [`read_body`] for a handler that reads
//! its own body (after taking its concurrency slot), [`buffer_body`] as the layer for routes whose
//! extractors read it. A client that sends its body slowly, or never, gets 408; one that sends
//! too much, 413 — both in OpenAI's error shape, and neither holds the connection longer.

use crate::http::error::ApiError;
use crate::state::AppState;
use axum::body::HttpBody as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::time::Duration;

/// Reads `body` whole: at most `limit` bytes, all of it within `timeout`.
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiError::too_large(limit));
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buffer = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::invalid_request(format!("the request body could not be read: {e}"), None)
            })?;
            if buffer.len() + chunk.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::body_timeout(timeout.as_millis() as u64)),
    }
}

/// The settings' limits for [`read_body`]: `server.max_body_bytes`, `server.body_read_timeout_ms`.
pub fn limits(state: &AppState) -> (usize, Duration) {
    (
        state.settings.server.max_body_bytes,
        Duration::from_millis(state.settings.server.body_read_timeout_ms),
    )
}

/// Middleware: reads the body within the limits before the handler runs, and hands it on whole.
pub async fn buffer_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared_empty = parts
        .headers
        .get(CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    if declared_empty || body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let (limit, timeout) = limits(&state);
    match read_body(body, limit, timeout).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    #[tokio::test]
    async fn a_body_within_its_limits_is_read_whole() {
        let body = Body::from_stream(stream::iter([
            Ok::<_, std::io::Error>(Bytes::from_static(b"{\"a\":")),
            Ok(Bytes::from_static(b"1}")),
        ]));
        let bytes = read_body(body, 1024, Duration::from_secs(1)).await.unwrap();
        assert_eq!(&bytes[..], b"{\"a\":1}");
    }

    #[tokio::test]
    async fn a_body_over_the_size_is_413_even_without_a_length() {
        let body = Body::from_stream(stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 400]))),
        ));
        let error = read_body(body, 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(error.status, 413);
        let declared = Body::from(vec![b'x'; 2048]);
        let error = read_body(declared, 1024, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(error.status, 413);
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_is_408() {
        let body = Body::from_stream(
            stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{\"mess"))])
                .chain(stream::pending()),
        );
        let error = read_body(body, 1024, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(error.status, 408);
        assert_eq!(error.code, "request_timeout");
    }
}
