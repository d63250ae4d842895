//! Re-framing the engine's chat SSE stream through a translator (Responses events, Anthropic's
//! Messages events, legacy completion chunks): each chat event's data in, the bytes to send out.
//! Dropping the result drops the chat stream, so a client that leaves still stops the upstream.

use axum::body::Bytes;
use freerouter::providers::SseParser;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::pin::Pin;

/// Turns chat events into what the client's API sends.
pub trait Translator: Send + 'static {
    /// One chat event's data (a chunk, `[DONE]`, the engine's error event); "" sends nothing.
    fn push(&mut self, data: &str) -> String;
    /// The chat stream ended.
    fn end(&mut self) -> String;
    /// Work that must be done before the bytes just translated go out (storing a finished
    /// response, so a follow-up sent the moment it ends finds it).
    fn finishing(&mut self) -> Option<BoxFuture<'static, ()>> {
        None
    }
}

struct State<T> {
    chat: Pin<Box<dyn Stream<Item = Result<Bytes, Infallible>> + Send>>,
    parser: SseParser,
    translator: T,
    ended: bool,
}

/// `opening`, then the chat stream's events through `translator`; empty outputs are skipped.
pub fn translated<S, T>(
    chat: S,
    opening: String,
    translator: T,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
    T: Translator,
{
    let state = State {
        chat: Box::pin(chat),
        // The engine writes these events itself, each bounded by what it forwards.
        parser: SseParser::new(usize::MAX),
        translator,
        ended: false,
    };
    let rest = futures::stream::unfold(state, |mut state| async move {
        while !state.ended {
            let out = match state.chat.next().await {
                Some(Ok(bytes)) => {
                    let events = state.parser.push(&bytes).unwrap_or_default();
                    let translator = &mut state.translator;
                    events
                        .iter()
                        .map(|e| translator.push(&e.data))
                        .collect::<String>()
                }
                Some(Err(never)) => match never {},
                None => {
                    state.ended = true;
                    state.translator.end()
                }
            };
            if let Some(work) = state.translator.finishing() {
                work.await;
            }
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), state));
            }
        }
        None
    });
    let opening = (!opening.is_empty()).then(|| Ok(Bytes::from(opening)));
    futures::stream::iter(opening).chain(rest)
}
