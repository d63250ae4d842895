//! Re-framing the engine's chat SSE stream through a translator (Responses events, legacy
//! completion chunks): each chat event's data in, the bytes to send out. Dropping the result
//! drops the chat stream, so a client that leaves still stops the upstream.

use axum::body::Bytes;
use freerouter::providers::SseParser;
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::pin::Pin;

/// What a translator is told: one chat event's data, or that the chat stream ended.
pub enum ChatEvent<'a> {
    Data(&'a str),
    End,
}

struct State<T> {
    chat: Pin<Box<dyn Stream<Item = Result<Bytes, Infallible>> + Send>>,
    parser: SseParser,
    translate: T,
    ended: bool,
}

/// `opening`, then the chat stream's events passed through `translate`; empty outputs are skipped.
pub fn translated<S, T>(
    chat: S,
    opening: String,
    translate: T,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
    T: FnMut(ChatEvent<'_>) -> String + Send + 'static,
{
    let state = State {
        chat: Box::pin(chat),
        // The engine writes these events itself, each bounded by what it forwards.
        parser: SseParser::new(usize::MAX),
        translate,
        ended: false,
    };
    let rest = futures::stream::unfold(state, |mut state| async move {
        while !state.ended {
            let out = match state.chat.next().await {
                Some(Ok(bytes)) => {
                    let events = state.parser.push(&bytes).unwrap_or_default();
                    let translate = &mut state.translate;
                    events
                        .iter()
                        .map(|e| translate(ChatEvent::Data(&e.data)))
                        .collect::<String>()
                }
                Some(Err(never)) => match never {},
                None => {
                    state.ended = true;
                    (state.translate)(ChatEvent::End)
                }
            };
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), state));
            }
        }
        None
    });
    let opening = (!opening.is_empty()).then(|| Ok(Bytes::from(opening)));
    futures::stream::iter(opening).chain(rest)
}
