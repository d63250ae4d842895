//! Property tests over the three parsers that read untrusted bytes: the client's request body, the
//! upstream's SSE stream and its rate-limit headers. None may panic, and each keeps its bounds,
//! whatever arrives. Case counts are bounded so the whole file runs in seconds under `cargo test`.

use ::http::header::{HeaderMap, HeaderName, HeaderValue};
use freerouter::providers::ratelimit::{MAX_RESET_MS, parse_reset};
use freerouter::providers::{RateLimitInfo, SseParser};
use freerouter::routing::ChatRequest;
use freerouter::routing::fields::FieldPolicy;
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000_000;

/// Any JSON value, nested a few levels, with the field names the request parser looks at.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "user",
            "assistant",
            "system",
            "tool",
            "auto",
            "image_url",
            "text"
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let key = prop::sample::select(vec![
            "model",
            "messages",
            "role",
            "content",
            "stream",
            "stream_options",
            "include_usage",
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "n",
            "tools",
            "tool_calls",
            "type",
            "text",
            "image_url",
            "response_format",
            "function",
        ])
        .prop_map(str::to_string);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Uses everything a parsed request offers, as the engine would.
fn exercise(request: &ChatRequest) {
    let _ = request.estimated_prompt_tokens();
    let _ = request.required_tags();
    let body = request.upstream_body("upstream-model", |_| true);
    // What is spliced together is always valid JSON.
    assert!(serde_json::from_slice::<Value>(&body.to_bytes()).is_ok());
}

fn parse(bytes: &[u8]) -> Result<ChatRequest, freerouter::routing::InvalidRequest> {
    ChatRequest::parse(bytes, &FieldPolicy::everything())
}

fn from_value(value: Value) -> Result<ChatRequest, freerouter::routing::InvalidRequest> {
    parse(&serde_json::to_vec(&value).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_bytes_parse_or_are_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(request) = parse(&bytes) {
            exercise(&request);
        }
    }

    #[test]
    fn any_json_value_parses_or_is_refused_without_panic(value in json_value()) {
        if let Ok(request) = from_value(value) {
            exercise(&request);
        }
    }

    #[test]
    fn a_valid_request_with_one_field_replaced_parses_or_names_what_is_wrong(
        field in prop::sample::select(vec![
            "model", "messages", "stream", "stream_options", "max_tokens", "temperature", "n", "tools",
        ]),
        replacement in json_value(),
    ) {
        let mut body = json!({
            "model": "auto",
            "stream": true,
            "messages": [{"role": "user", "content": "hello"}],
        });
        body[field] = replacement;
        match from_value(body) {
            Ok(request) => exercise(&request),
            Err(refusal) => prop_assert!(!refusal.message.is_empty()),
        }
    }
}

/// Feeds `chunks` to a parser bounded at `max`; the events, or `None` when the bound was hit.
fn parse_in(chunks: &[&[u8]], max: usize) -> Option<Vec<freerouter::providers::SseEvent>> {
    let mut parser = SseParser::new(max);
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.push(chunk).ok()?);
    }
    events.extend(parser.finish());
    Some(events)
}

/// Bytes that look like SSE often enough to reach every branch.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"data:\n".to_vec()),
        Just(b"event: error".to_vec()),
        Just(b": ping".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"[DONE]".to_vec()),
        Just(b"{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}".to_vec()),
        Just(vec![0xff, 0xfe, 0xc3]),
        prop::collection::vec(any::<u8>(), 0..24),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_sse_reader_never_panics_and_never_yields_an_event_over_its_bound(
        bytes in sse_bytes(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        max in 1usize..64,
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in at {
            chunks.push(&bytes[start..cut]);
            start = cut;
        }
        chunks.push(&bytes[start..]);
        if let Some(events) = parse_in(&chunks, max) {
            for event in &events {
                prop_assert!(event.data.len() <= max, "{} > {max}", event.data.len());
            }
        }
    }

    #[test]
    fn where_the_bytes_are_split_does_not_change_the_events(
        bytes in sse_bytes(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = parse_in(&[&bytes], 1 << 20);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in at {
            chunks.push(&bytes[start..cut]);
            start = cut;
        }
        chunks.push(&bytes[start..]);
        prop_assert_eq!(whole, parse_in(&chunks, 1 << 20));
    }
}

/// Values seen in the wild, and junk around them.
fn reset_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,25}",
        "[0-9]{1,20}\\.[0-9]{1,6}",
        "([0-9]{1,15}(h|m|s|ms|us|µs|ns)){1,4}",
        "-?[0-9.e+-]{1,12}",
        Just("Wed, 21 Oct 2015 07:28:00 GMT".to_string()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_string()),
        "[ -~]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_reset_value_is_bounded_and_can_be_added_to_the_clock(value in reset_value()) {
        if let Some(ms) = parse_reset(&value, NOW) {
            prop_assert!(ms <= MAX_RESET_MS);
            prop_assert!(NOW.checked_add(ms as i64).is_some());
        }
    }

    #[test]
    fn rate_limit_headers_never_panic_and_every_hint_is_bounded(
        pairs in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "retry-after",
                    "x-ratelimit-remaining-requests",
                    "x-ratelimit-remaining-tokens",
                    "x-ratelimit-reset-requests",
                    "x-ratelimit-reset-tokens",
                    "x-ratelimit-remaining-requests-day",
                    "x-ratelimit-reset-tokens-minute",
                ]),
                reset_value(),
            ),
            0..8,
        ),
        refused in any::<bool>(),
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in &pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        let info = RateLimitInfo::from_headers(&headers, NOW);
        let _ = info.is_exhausted();
        for ms in [
            info.retry_after_ms,
            info.reset_requests_ms,
            info.reset_tokens_ms,
            info.wait_hint_ms(refused),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(ms <= MAX_RESET_MS, "{ms} from {pairs:?}");
        }
    }
}
