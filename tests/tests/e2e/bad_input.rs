//! Bad input over real HTTP: random and mutated request bodies, odd headers, absurd nesting. Every
//! answer is a 2xx or a 4xx in OpenAI's error shape; never a 5xx, never a dropped connection.

use freerouter_tests::harness::{GatewayConfig, TestGateway};
use freerouter_tests::simulator::Simulator;
use serde_json::{Value, json};
use std::time::Duration;

/// Cases the seeded loop sends (a few seconds in debug).
const CASES: usize = 400;
const SEED: u64 = 0x5eed_f00d_cafe_0008;

/// A small deterministic generator (xorshift64*): the same cases every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

async fn one_route() -> (Simulator, TestGateway) {
    let sim = Simulator::start().await;
    sim.model("m");
    sim.set_recording(false);
    let gateway = GatewayConfig::new()
        .provider("p", &sim)
        .route("p", "m", 1)
        .start()
        .await;
    (sim, gateway)
}

/// Bodies a client might plausibly send, valid ones included.
fn seeds() -> Vec<Value> {
    vec![
        json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}),
        json!({"messages": [{"role": "user", "content": [
                  {"type": "text", "text": "what is this?"},
                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}],
               "max_tokens": 16, "temperature": 0.2}),
        json!({"model": "auto-fast", "messages": [
                  {"role": "user", "content": "weather?"},
                  {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                      "function": {"name": "w", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
               "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
               "tool_choice": "auto"}),
        json!({"model": "auto-balanced", "response_format": {"type": "json_object"}, "n": 1,
               "messages": [{"role": "developer", "content": "json"}, {"role": "user", "content": "go"}]}),
    ]
}

/// A random JSON value, `depth` levels at most.
fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth == 0 { 6 } else { 8 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(*rng.pick(&[-1.5, 0.0, 1e308, -1e-308, 2.5, 1e20])),
        4 => json!(*rng.pick(&[
            "",
            "user",
            "assistant",
            "auto",
            "m",
            "\u{0}",
            "é\u{202e}😀",
            "[DONE]",
            "data: x\n\n",
        ])),
        5 => Value::String("x".repeat(rng.below(3000))),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "role",
                "content",
                "model",
                "messages",
                "stream",
                "type",
                "text",
                "tool_calls",
                "n",
                "max_tokens",
                "tools",
                "name",
                "image_url",
                "stream_options",
                "include_usage",
            ];
            Value::Object(
                (0..rng.below(4))
                    .map(|_| (rng.pick(&keys).to_string(), random_value(rng, depth - 1)))
                    .collect(),
            )
        }
    }
}

/// Replaces one value somewhere in `value` (fields of objects, items of arrays) with a random one.
fn mutate_value(rng: &mut Rng, value: &mut Value) {
    let replace_here = rng.chance(30);
    match value {
        Value::Object(map) if !map.is_empty() && !replace_here => {
            let key = map
                .keys()
                .nth(rng.below(map.len()))
                .cloned()
                .expect("a key");
            if rng.chance(15) {
                map.remove(&key);
            } else if let Some(inner) = map.get_mut(&key) {
                mutate_value(rng, inner);
            }
        }
        Value::Array(items) if !items.is_empty() && !replace_here => {
            let at = rng.below(items.len());
            mutate_value(rng, &mut items[at]);
        }
        _ => *value = random_value(rng, 3),
    }
}

/// One request body: a mutated seed, corrupted bytes, or something else entirely.
fn random_body(rng: &mut Rng, seeds: &[Value]) -> Vec<u8> {
    let mut value = rng.pick(seeds).clone();
    match rng.below(8) {
        0..=2 => {
            for _ in 0..=rng.below(3) {
                mutate_value(rng, &mut value);
            }
            serde_json::to_vec(&value).expect("serialises")
        }
        3 => {
            // Bytes flipped, inserted (invalid UTF-8 included) or cut.
            let mut bytes = serde_json::to_vec(&value).expect("serialises");
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] = rng.next() as u8,
                    1 => bytes.insert(at, *rng.pick(&[0xff, 0xc3, 0x00, b'"', b'{', b']', b'\\'])),
                    _ => bytes.truncate(at.max(1)),
                }
            }
            bytes
        }
        4 => serde_json::to_vec(&random_value(rng, 4)).expect("serialises"),
        5 => {
            let depth = 1 + rng.below(5000);
            let mut nested = "[".repeat(depth).into_bytes();
            nested.extend(std::iter::repeat_n(b']', depth));
            if rng.chance(50) {
                let mut wrapped = br#"{"messages":[{"role":"user","content":"#.to_vec();
                wrapped.extend(nested);
                wrapped.extend_from_slice(b"}]}");
                wrapped
            } else {
                nested
            }
        }
        6 => {
            let many = (0..rng.below(300))
                .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": i.to_string()}))
                .collect::<Vec<_>>();
            serde_json::to_vec(&json!({"model": "auto", "messages": many})).expect("serialises")
        }
        _ => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
    }
}

/// Extra headers a case goes with.
fn random_headers(rng: &mut Rng) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if rng.chance(20) {
        headers.push((
            "x-freerouter-strict",
            rng.pick(&["true", "TRUE", "1", "", "no"]).to_string(),
        ));
    }
    if rng.chance(20) {
        headers.push(("x-session-id", "s".repeat(rng.below(5000))));
    }
    if rng.chance(10) {
        headers.push((
            "content-type",
            rng.pick(&["text/plain", "application/x-www-form-urlencoded", ""])
                .to_string(),
        ));
    }
    headers
}

/// Asserts the answer is a 2xx (read whole) or a 4xx with an OpenAI-shaped error.
async fn assert_answered_well(case: usize, body: &[u8], response: reqwest::Response) {
    let status = response.status();
    let text = tokio::time::timeout(Duration::from_secs(20), response.bytes())
        .await
        .unwrap_or_else(|_| panic!("case {case}: the answer ends"))
        .unwrap_or_else(|e| panic!("case {case}: the answer reads: {e}"));
    let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    assert!(
        status.is_success() || status.is_client_error(),
        "case {case}: {status} for {shown}: {}",
        String::from_utf8_lossy(&text)
    );
    if status.is_client_error() {
        let error: Value = serde_json::from_slice(&text)
            .unwrap_or_else(|_| panic!("case {case}: a JSON error for {shown}"));
        assert!(
            error["error"]["message"].is_string()
                && error["error"]["type"].is_string()
                && error["error"].get("code").is_some(),
            "case {case}: OpenAI's error shape for {shown}: {error}"
        );
    }
}

#[tokio::test]
async fn random_and_mutated_request_bodies_never_get_a_5xx() {
    let (sim, gateway) = one_route().await;
    let mut rng = Rng(SEED);
    let seeds = seeds();
    let (mut ok, mut refused) = (0, 0);
    for case in 0..CASES {
        let body = random_body(&mut rng, &seeds);
        let mut request = gateway
            .http
            .post(gateway.url("/v1/chat/completions"))
            .header("content-type", "application/json");
        for (name, value) in random_headers(&mut rng) {
            request = request.header(name, value);
        }
        let response = request
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("case {case}: the gateway answers: {e}"));
        if response.status().is_success() {
            ok += 1;
        } else {
            refused += 1;
        }
        assert_answered_well(case, &body, response).await;
    }
    eprintln!(
        "{CASES} cases (seed {SEED:#x}): {ok} served, {refused} refused; {} reached the upstream",
        sim.total_calls()
    );
    assert!(ok > 0 && refused > 0, "the cases cover both sides");
    // Still serving.
    let response = gateway
        .chat(&freerouter_tests::harness::ask("auto", "still there?"))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_request_with_oversized_headers_is_refused_and_the_gateway_keeps_serving() {
    let (_sim, gateway) = one_route().await;
    let answer = gateway
        .http
        .post(gateway.url("/v1/chat/completions"))
        .header("x-padding", "a".repeat(1 << 20))
        .json(&freerouter_tests::harness::ask("auto", "hi"))
        .send()
        .await;
    match answer {
        Ok(response) => assert!(response.status().is_client_error(), "{}", response.status()),
        // Refusing to read further and closing is also a refusal.
        Err(e) => eprintln!("oversized headers: the connection was closed: {e}"),
    }
    let response = gateway
        .chat(&freerouter_tests::harness::ask("auto", "hi"))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn absurdly_nested_json_is_an_invalid_request() {
    let (_sim, gateway) = one_route().await;
    let depth = 100_000;
    let mut body = br#"{"messages":[{"role":"user","content":"#.to_vec();
    body.extend("[".repeat(depth).into_bytes());
    body.extend("]".repeat(depth).into_bytes());
    body.extend_from_slice(b"}]}");
    let response = gateway.chat_raw(body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("a JSON error");
    assert_eq!(error["error"]["code"], "invalid_request");
}
