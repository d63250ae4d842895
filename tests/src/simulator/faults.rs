//! Wire faults: bodies and events far larger than any bound, answers dripped a few bytes at a time,
//! floods of tiny events, bytes that are not UTF-8.
//!
//! Large bodies are played out of one shared buffer (cloning [`Bytes`] only counts a reference), so
//! a 64 MiB answer costs the simulator one padding block, not 64 MiB.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::completion;
use super::reply::{Meta, Reply};
use super::stream::{Step, chunk, event};

/// The padding block large bodies are made of.
const BLOCK_BYTES: usize = 64 * 1024;

/// The character an [`super::Behavior::InvalidUtf8`] answer ends with before [`corrupt_utf8`]
/// turns its byte into one that is never valid UTF-8.
pub(crate) const UTF8_MARK: char = '\u{7f}';

/// Stands for the padding while a body is laid out as JSON; never appears in a real answer.
const PAD_MARK: &str = "@@sim-padding@@";

/// `bytes` of `a`, as clones of one block.
fn padding(bytes: usize) -> impl Iterator<Item = Step> {
    let block = Bytes::from(vec![b'a'; BLOCK_BYTES]);
    let (full, rest) = (bytes / BLOCK_BYTES, bytes % BLOCK_BYTES);
    (0..full)
        .map(move |_| Step::Send(block.clone()))
        .chain((rest > 0).then(|| Step::Send(Bytes::from(vec![b'a'; rest]))))
}

/// `text` laid out with the padding where [`PAD_MARK`] stands: prefix, padding, suffix.
fn padded(text: &str, pad_bytes: usize) -> Vec<Step> {
    let (prefix, suffix) = text
        .split_once(PAD_MARK)
        .expect("the layout holds the mark");
    let mut steps = vec![Step::Send(Bytes::from(prefix.to_string()))];
    steps.extend(padding(pad_bytes));
    steps.push(Step::Send(Bytes::from(suffix.to_string())));
    steps
}

/// A non-streamed completion of about `bytes` bytes: its content is that much padding.
pub(crate) fn huge_completion(meta: &Meta, bytes: usize) -> Vec<Step> {
    let layout = completion::body(meta, &Reply::Text(PAD_MARK.into())).to_string();
    padded(&layout, bytes)
}

/// The role chunk, then one content event of about `bytes` bytes, then the end of a stream.
pub(crate) fn huge_event(meta: &Meta, bytes: usize) -> Vec<Step> {
    let layout = event(&chunk(meta, json!({"content": PAD_MARK}), None));
    let layout = String::from_utf8(layout.to_vec()).expect("events are UTF-8");
    let mut steps = vec![role(meta)];
    steps.extend(padded(&layout, bytes));
    steps.extend(ending(meta));
    steps
}

/// A stream whose content totals about `bytes` bytes, in events of [`BLOCK_BYTES`] content each:
/// every event is small, the whole is not.
pub(crate) fn many_large_events(meta: &Meta, bytes: usize) -> Vec<Step> {
    let content = "a".repeat(BLOCK_BYTES);
    let one = event(&chunk(meta, json!({ "content": content }), None));
    let mut steps = vec![role(meta)];
    steps.extend((0..bytes.div_ceil(BLOCK_BYTES)).map(|_| Step::Send(one.clone())));
    steps.extend(ending(meta));
    steps
}

/// The text [`tiny_event_flood`] streams: its `i`-th event carries the `i`-th character.
pub fn flood_text(events: usize) -> String {
    (0..events)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect()
}

/// The role chunk, `events` content events of one character each ([`flood_text`]), the end.
pub(crate) fn tiny_event_flood(meta: &Meta, events: usize) -> Vec<Step> {
    let digits: Vec<Bytes> = (0..10)
        .map(|d| event(&chunk(meta, json!({"content": d.to_string()}), None)))
        .collect();
    let mut steps = vec![role(meta)];
    steps.extend((0..events).map(|i| Step::Send(digits[i % 10].clone())));
    steps.extend(ending(meta));
    steps
}

/// `steps` with `events` chunks that carry nothing (an empty delta) after the role chunk.
pub(crate) fn empty_event_flood(meta: &Meta, mut steps: Vec<Step>, events: usize) -> Vec<Step> {
    let empty = event(&chunk(meta, json!({}), None));
    let at = steps.len().min(1);
    steps.splice(at..at, (0..events).map(|_| Step::Send(empty.clone())));
    steps
}

/// The same bytes in pieces of `piece_bytes`, `interval` apart (the first one at once).
pub(crate) fn drip(steps: Vec<Step>, piece_bytes: usize, interval: Duration) -> Vec<Step> {
    let mut all = Vec::new();
    for step in steps {
        if let Step::Send(bytes) = step {
            all.extend_from_slice(&bytes);
        }
    }
    let all = Bytes::from(all);
    let mut dripped = Vec::new();
    let piece_bytes = piece_bytes.max(1);
    for start in (0..all.len()).step_by(piece_bytes) {
        if start > 0 {
            dripped.push(Step::Wait(interval));
        }
        dripped.push(Step::Send(
            all.slice(start..(start + piece_bytes).min(all.len())),
        ));
    }
    dripped
}

/// Every [`UTF8_MARK`] byte replaced by `0xFF`, which no UTF-8 text contains.
pub(crate) fn corrupt_utf8(steps: Vec<Step>) -> Vec<Step> {
    steps
        .into_iter()
        .map(|step| match step {
            Step::Send(bytes) => Step::Send(
                bytes
                    .iter()
                    .map(|&b| if b == UTF8_MARK as u8 { 0xFF } else { b })
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            other => other,
        })
        .collect()
}

fn role(meta: &Meta) -> Step {
    Step::Send(event(&chunk(
        meta,
        json!({"role": "assistant", "content": ""}),
        None,
    )))
}

/// The finish chunk and `[DONE]`.
fn ending(meta: &Meta) -> [Step; 2] {
    [
        Step::Send(event(&chunk(meta, json!({}), Some("stop")))),
        Step::Send(Bytes::from_static(b"data: [DONE]\n\n")),
    ]
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

    fn joined(steps: &[Step]) -> Vec<u8> {
        let mut out = Vec::new();
        for step in steps {
            if let Step::Send(bytes) = step {
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    #[test]
    fn a_huge_completion_is_valid_json_of_the_requested_size() {
        let body = joined(&huge_completion(&meta(), 200_000));
        assert!(body.len() >= 200_000 && body.len() < 201_000);
        let value: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        let content = value["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(content.len(), 200_000);
    }

    #[test]
    fn a_huge_event_is_one_event_between_the_role_chunk_and_the_end() {
        let body = String::from_utf8(joined(&huge_event(&meta(), 100_000))).unwrap();
        let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 4);
        assert!(events[1].len() > 100_000);
        assert_eq!(events[3], "data: [DONE]");
    }

    #[test]
    fn many_large_events_are_each_one_block_of_content() {
        let steps = many_large_events(&meta(), 3 * BLOCK_BYTES);
        assert_eq!(steps.len(), 1 + 3 + 2);
    }

    #[test]
    fn a_flood_carries_its_text_one_character_an_event() {
        let body = String::from_utf8(joined(&tiny_event_flood(&meta(), 25))).unwrap();
        let text: String = body
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(String::from)
            })
            .collect();
        assert_eq!(text, flood_text(25));
    }

    #[test]
    fn empty_events_follow_the_role_chunk() {
        let steps = vec![Step::Send(Bytes::from_static(b"role")), Step::Stall];
        let flooded = empty_event_flood(&meta(), steps, 3);
        assert_eq!(flooded.len(), 5);
        assert_eq!(flooded[0], Step::Send(Bytes::from_static(b"role")));
        assert_eq!(flooded[4], Step::Stall);
    }

    #[test]
    fn a_drip_keeps_the_bytes_and_waits_between_pieces() {
        let steps = vec![
            Step::Send(Bytes::from_static(b"hello ")),
            Step::Send(Bytes::from_static(b"world")),
        ];
        let dripped = drip(steps, 4, Duration::from_millis(3));
        assert_eq!(joined(&dripped), b"hello world");
        assert_eq!(dripped.len(), 3 + 2);
        assert_eq!(dripped[1], Step::Wait(Duration::from_millis(3)));
    }

    #[test]
    fn the_mark_becomes_an_invalid_byte() {
        let steps = vec![Step::Send(Bytes::from(format!("caf{UTF8_MARK}")))];
        let bytes = joined(&corrupt_utf8(steps));
        assert_eq!(bytes, b"caf\xff");
        assert!(std::str::from_utf8(&bytes).is_err());
    }
}
