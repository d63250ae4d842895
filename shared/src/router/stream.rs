//! A streamed chat completion as a [`futures::Stream`] of chunks: the engine's committed stream
//! (the events the gateway would send, rescue included) read back into JSON chunks.

use super::error::RouterError;
use super::response::ServedBy;
use crate::routing::CommittedStream;
use bytes::{Bytes, BytesMut};
use futures::Stream;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

type Events = Pin<Box<dyn Stream<Item = Result<Bytes, Infallible>> + Send>>;

/// One chunk of a streamed answer: OpenAI's `chat.completion.chunk` object as the upstream sent it.
#[derive(Clone, Debug)]
pub struct ChatChunk {
    /// The chunk object (`choices[].delta`, and `usage` in the last one when asked for).
    pub body: Value,
}

impl ChatChunk {
    /// The first choice's new text in this chunk (`""` when it carries none).
    pub fn text(&self) -> &str {
        self.body
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// A streamed chat completion, committed to a route. Yields chunks until the answer ends; a
/// failure no route could rescue is yielded as [`RouterError::StreamFailed`], and ends it.
/// Dropping it stops the upstream call (the quota is settled with what was used).
pub struct ChatStream {
    served: ServedBy,
    events: Events,
    buffer: BytesMut,
    ready: VecDeque<Result<ChatChunk, RouterError>>,
    ended: bool,
}

impl ChatStream {
    pub(super) fn new(committed: CommittedStream) -> Self {
        let served = ServedBy::from_served(&committed.served);
        Self {
            served,
            events: Box::pin(committed.into_body(())),
            buffer: BytesMut::new(),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    /// The route the stream committed to. (A rescue may continue it on another route; the
    /// request log and the trail record that.)
    pub fn served(&self) -> &ServedBy {
        &self.served
    }

    /// Reads the rest of the stream and returns its text.
    pub async fn text(mut self) -> Result<String, RouterError> {
        use futures::StreamExt;
        let mut text = String::new();
        while let Some(chunk) = self.next().await {
            text.push_str(chunk?.text());
        }
        Ok(text)
    }

    /// Splits what has arrived into events; each `data:` line becomes a chunk, an error or the end.
    fn read_events(&mut self) {
        while let Some(at) = find_event_end(&self.buffer) {
            let event = self.buffer.split_to(at + 2);
            let Ok(event) = std::str::from_utf8(&event) else {
                continue;
            };
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim();
                if data == "[DONE]" {
                    self.ended = true;
                    return;
                }
                let Ok(body) = serde_json::from_str::<Value>(data) else {
                    continue;
                };
                if let Some(error) = body.get("error") {
                    let field = |name: &str| {
                        error
                            .get(name)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    self.ready.push_back(Err(RouterError::StreamFailed {
                        code: field("code"),
                        message: field("message"),
                    }));
                    self.ended = true;
                    return;
                }
                self.ready.push_back(Ok(ChatChunk { body }));
            }
        }
    }
}

fn find_event_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|w| w == b"\n\n")
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk, RouterError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Poll::Ready(Some(item));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match self.events.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.ended = true;
                }
                Poll::Ready(Some(Ok(bytes))) => {
                    self.buffer.extend_from_slice(&bytes);
                    self.read_events();
                }
                Poll::Ready(Some(Err(never))) => match never {},
            }
        }
    }
}
