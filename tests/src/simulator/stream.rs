//! Streaming answers: the SSE events of an answer as a list of steps, and a body that plays them out.
//!
//! The body is a stream polled by hyper, so the response headers go out as soon as the handler returns
//! and every delay happens inside the body.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde_json::{Value, json};

use super::reply::{Meta, Reply, TOOL_CALL_ID};
use super::state::SimState;
use super::text;

/// One thing the body does next.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    Wait(Duration),
    Send(Bytes),
    /// End the connection abruptly (the body errors, so no clean end of message).
    Cut,
    /// Send nothing more and keep the connection open until the simulator shuts down.
    Stall,
}

/// How a stream ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Ending {
    Complete,
    /// Everything but `data: [DONE]`, then a stall.
    NoDone,
    /// Complete, with one unparseable event after the first content chunk.
    BrokenAfterFirst,
    /// Cut after this many content chunks.
    CutAfter(usize),
    /// Stall after this many content chunks.
    StallAfter(usize),
}

/// Delays of a stream.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pacing {
    pub first_token_delay: Duration,
    pub chunk_delay: Duration,
}

/// How long a cut waits so that what was sent before it reaches the client.
const FLUSH_PAUSE: Duration = Duration::from_millis(10);

/// The unparseable event [`Ending::BrokenAfterFirst`] inserts.
pub(crate) const BROKEN_EVENT: &str = "data: {\"choices\": [\n\n";

/// The steps of a streamed answer: role chunk, content chunks, finish chunk, usage chunk, `[DONE]`.
pub(crate) fn answer_steps(
    meta: &Meta,
    reply: &Reply,
    include_usage: bool,
    pacing: Pacing,
    ending: Ending,
) -> Vec<Step> {
    let role = json!({"role": "assistant", "content": ""});
    let mut steps = vec![Step::Send(event(&chunk(meta, role, None)))];
    let deltas = content_deltas(reply);
    let stop_after = match ending {
        Ending::CutAfter(n) => Some((n, Step::Cut)),
        Ending::StallAfter(n) => Some((n, Step::Stall)),
        _ => None,
    };
    for (i, delta) in deltas.into_iter().enumerate() {
        if let Some((n, stop)) = &stop_after
            && i == *n
        {
            steps.push(stop.clone());
            return steps;
        }
        let delay = if i == 0 {
            pacing.first_token_delay
        } else {
            pacing.chunk_delay
        };
        push_wait(&mut steps, delay);
        steps.push(Step::Send(event(&chunk(meta, delta, None))));
        if i == 0 && ending == Ending::BrokenAfterFirst {
            steps.push(Step::Send(Bytes::from_static(BROKEN_EVENT.as_bytes())));
        }
    }
    if let Some((_, stop)) = stop_after {
        steps.push(stop);
        return steps;
    }
    if content_deltas(reply).is_empty() {
        push_wait(&mut steps, pacing.first_token_delay);
    }
    let finish = chunk(meta, json!({}), Some(reply.finish_reason()));
    steps.push(Step::Send(event(&finish)));
    if include_usage {
        let usage = json!({
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "choices": [],
            "usage": meta.usage(reply.completion_tokens()),
        });
        steps.push(Step::Send(event(&usage)));
    }
    if ending == Ending::NoDone {
        steps.push(Step::Stall);
    } else {
        steps.push(Step::Send(Bytes::from_static(b"data: [DONE]\n\n")));
    }
    steps
}

/// What a stream answering with [`super::Behavior::MalformedJson`] sends: garbage, then a clean close.
pub(crate) fn garbage_steps() -> Vec<Step> {
    vec![
        Step::Send(Bytes::from_static(b"data: {\"id\": \"broken\n\n")),
        Step::Send(Bytes::from_static(b"data: this is not json\n\n")),
    ]
}

/// A body that plays `steps` in order.
pub(crate) fn body(steps: Vec<Step>, state: SimState) -> Body {
    let stream = futures::stream::unfold(
        (steps.into_iter(), state, false),
        |(mut steps, state, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match steps.next()? {
                    Step::Wait(delay) => tokio::time::sleep(delay).await,
                    Step::Send(bytes) => return Some((Ok(bytes), (steps, state, false))),
                    Step::Cut => {
                        // Let hyper flush what was sent: an error while its buffer is full would
                        // drop the buffered events (or even the headers) with the connection.
                        tokio::time::sleep(FLUSH_PAUSE).await;
                        let cut = io::Error::new(io::ErrorKind::ConnectionReset, "simulated cut");
                        return Some((Err(cut), (steps, state, true)));
                    }
                    Step::Stall => {
                        state.until_shutdown().await;
                        let gone =
                            io::Error::new(io::ErrorKind::ConnectionAborted, "simulator shut down");
                        return Some((Err(gone), (steps, state, true)));
                    }
                }
            }
        },
    );
    Body::from_stream(stream)
}

fn push_wait(steps: &mut Vec<Step>, delay: Duration) {
    if !delay.is_zero() {
        steps.push(Step::Wait(delay));
    }
}

/// `data: {json}\n\n`.
pub(crate) fn event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// One `chat.completion.chunk` with this delta for choice 0.
pub(crate) fn chunk(meta: &Meta, delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
}

/// The deltas carrying the answer: one word each, or a tool call's header then argument fragments.
fn content_deltas(reply: &Reply) -> Vec<Value> {
    match reply {
        Reply::Text(t) => text::word_pieces(t)
            .into_iter()
            .map(|piece| json!({"content": piece}))
            .collect(),
        Reply::ToolCall { name, arguments } => {
            let header = json!({"tool_calls": [{
                "index": 0,
                "id": TOOL_CALL_ID,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }]});
            let fragments = fragments(arguments, 8)
                .into_iter()
                .map(|f| json!({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}));
            std::iter::once(header).chain(fragments).collect()
        }
    }
}

/// `s` in pieces of at most `size` characters.
fn fragments(s: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            id: "chatcmpl-sim-1".into(),
            created: 7,
            model: "m".into(),
            prompt_tokens: 2,
        }
    }

    fn sent(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Send(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect()
    }

    fn payload(event: &str) -> Value {
        let data = event.strip_prefix("data: ").expect("data event").trim_end();
        serde_json::from_str(data).expect("json event")
    }

    #[test]
    fn a_complete_stream_ends_with_finish_usage_and_done() {
        let reply = Reply::Text("a b".into());
        let steps = answer_steps(&meta(), &reply, true, Pacing::default(), Ending::Complete);
        let events = sent(&steps);
        assert_eq!(events.len(), 6);
        assert_eq!(
            payload(&events[0])["choices"][0]["delta"]["role"],
            "assistant"
        );
        assert_eq!(payload(&events[2])["choices"][0]["delta"]["content"], " b");
        assert_eq!(payload(&events[3])["choices"][0]["finish_reason"], "stop");
        assert_eq!(payload(&events[4])["usage"]["completion_tokens"], 2);
        assert_eq!(events[5], "data: [DONE]\n\n");
    }

    #[test]
    fn delays_go_before_the_first_and_between_later_content_chunks() {
        let pacing = Pacing {
            first_token_delay: Duration::from_millis(5),
            chunk_delay: Duration::from_millis(1),
        };
        let steps = answer_steps(
            &meta(),
            &Reply::Text("a b".into()),
            false,
            pacing,
            Ending::Complete,
        );
        assert!(matches!(steps[0], Step::Send(_)));
        assert_eq!(steps[1], Step::Wait(Duration::from_millis(5)));
        assert_eq!(steps[3], Step::Wait(Duration::from_millis(1)));
    }

    #[test]
    fn a_cut_stream_stops_after_the_requested_content_chunks() {
        let reply = Reply::Text("a b c".into());
        let steps = answer_steps(
            &meta(),
            &reply,
            false,
            Pacing::default(),
            Ending::CutAfter(1),
        );
        assert_eq!(sent(&steps).len(), 2);
        assert_eq!(steps.last(), Some(&Step::Cut));
    }

    #[test]
    fn a_no_done_stream_finishes_then_stalls() {
        let steps = answer_steps(
            &meta(),
            &Reply::Text("a".into()),
            false,
            Pacing::default(),
            Ending::NoDone,
        );
        assert_eq!(steps.last(), Some(&Step::Stall));
        assert!(!sent(&steps).iter().any(|e| e.contains("[DONE]")));
    }

    #[test]
    fn a_broken_event_follows_the_first_content_chunk() {
        let reply = Reply::Text("a b".into());
        let events = sent(&answer_steps(
            &meta(),
            &reply,
            false,
            Pacing::default(),
            Ending::BrokenAfterFirst,
        ));
        assert_eq!(events[2], BROKEN_EVENT);
    }

    #[test]
    fn a_streamed_tool_call_reassembles_its_arguments() {
        let arguments = r#"{"city":"Paris","unit":"celsius"}"#;
        let reply = Reply::ToolCall {
            name: "get_weather".into(),
            arguments: arguments.into(),
        };
        let events = sent(&answer_steps(
            &meta(),
            &reply,
            false,
            Pacing::default(),
            Ending::Complete,
        ));
        let calls: Vec<Value> = events[1..events.len() - 2]
            .iter()
            .map(|e| payload(e)["choices"][0]["delta"]["tool_calls"][0].clone())
            .collect();
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(calls[0]["id"], TOOL_CALL_ID);
        let joined: String = calls
            .iter()
            .filter_map(|c| c["function"]["arguments"].as_str())
            .collect();
        assert_eq!(joined, arguments);
        assert_eq!(
            payload(&events[events.len() - 2])["choices"][0]["finish_reason"],
            "tool_calls"
        );
    }
}
