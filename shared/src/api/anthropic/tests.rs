//! Messages translation checked against the shapes of Anthropic's docs and its Python SDK's
//! fixtures (`tests/lib/streaming/fixtures/*.txt` in anthropics/anthropic-sdk-python).

use super::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn tiers() -> BTreeMap<String, String> {
    BTreeMap::from([("haiku".to_string(), "auto-fast".to_string())])
}

fn chat_of(body: &Value) -> Value {
    let translated = translate_request(body.to_string().as_bytes(), &tiers()).unwrap();
    serde_json::from_slice(&translated.body).unwrap()
}

fn refusal(body: &str) -> InvalidMessages {
    translate_request(body.as_bytes(), &tiers()).unwrap_err()
}

fn asked() -> Asked {
    Asked {
        model: resolve_model("claude-sonnet-4-5", &tiers()),
        stop_sequences: vec!["\n\nHuman:".to_string()],
    }
}

#[test]
fn what_claude_code_sends_becomes_a_plain_chat_request() {
    // The shape of a Claude Code turn: system blocks and tools with cache_control, a replayed
    // thinking block with its signature, a tool round trip, metadata.user_id, thinking enabled.
    let body = json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                {"type": "text", "text": "List the files.", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should call ls.", "signature": "EqQBCkYIBxgCKkB..."},
                {"type": "text", "text": "Listing them.", "citations": null},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "Bash",
                 "input": {"command": "ls"}, "caller": {"type": "direct"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                 "content": [{"type": "text", "text": "a.txt\nb.txt"}],
                 "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Which is newer?"}
            ]}
        ],
        "tools": [{
            "name": "Bash",
            "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                             "required": ["command"], "$schema": "http://json-schema.org/draft-07/schema#"},
            "cache_control": {"type": "ephemeral"}
        }],
        "tool_choice": {"type": "auto"},
        "metadata": {"user_id": "user_abc_account__session_0a1b"},
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "temperature": 1,
        "top_k": 40,
        "context_management": {"edits": []}
    });
    let chat = chat_of(&body);
    assert_eq!(
        chat,
        json!({
            "model": "auto",
            "messages": [
                {"role": "system", "content": "You are Claude Code.\n\nBe brief."},
                {"role": "user", "content": "<system-reminder>ctx</system-reminder>\n\nList the files."},
                {"role": "assistant", "content": "Listing them.", "tool_calls": [{
                    "id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                    "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}
                }]},
                {"role": "tool", "content": "a.txt\nb.txt", "tool_call_id": "toolu_01A09q90qw90lq917835lq9"},
                {"role": "user", "content": "Which is newer?"}
            ],
            "max_tokens": 32000,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 1.0,
            "tools": [{"type": "function", "function": {
                "name": "Bash", "description": "Run a command",
                "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                               "required": ["command"], "$schema": "http://json-schema.org/draft-07/schema#"}
            }}],
            "tool_choice": "auto",
            "user": "user_abc_account__session_0a1b",
            "reasoning_effort": "high"
        })
    );
}

#[test]
fn the_chat_request_it_becomes_passes_the_engines_validation() {
    let body = json!({
        "model": "claude-haiku-4-5-20251001",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
        ]}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}]
    });
    let translated = translate_request(body.to_string().as_bytes(), &tiers()).unwrap();
    assert_eq!(translated.asked.model.model, "auto-fast");
    let chat = crate::routing::ChatRequest::parse(
        &translated.body,
        &crate::routing::fields::FieldPolicy::everything(),
    )
    .unwrap();
    assert_eq!(chat.model, "auto-fast");
    assert_eq!(chat.max_tokens, Some(1024));
    assert_eq!(chat.required_tags(), vec!["tools", "vision"]);
    let sent = chat.upstream_body("m", |_| true).to_value();
    assert_eq!(
        sent["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}})
    );
}

#[test]
fn tool_choice_maps_to_its_chat_form() {
    let with = |choice: Value| {
        chat_of(&json!({
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "tool_choice": choice
        }))
    };
    assert_eq!(with(json!({"type": "any"}))["tool_choice"], "required");
    assert_eq!(with(json!({"type": "none"}))["tool_choice"], "none");
    let forced =
        with(json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true}));
    assert_eq!(
        forced["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(forced["parallel_tool_calls"], false);
    let without_tools = chat_of(&json!({
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": {"type": "any"}
    }));
    assert!(without_tools.get("tool_choice").is_none());
}

#[test]
fn tool_results_come_first_and_carry_errors_and_images() {
    let chat = chat_of(&json!({
        "messages": [
            {"role": "user", "content": "screenshot please"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": "denied"},
                {"type": "tool_result", "tool_use_id": "t2", "content": [
                    {"type": "text", "text": "here"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
                ]}
            ]}
        ]
    }));
    let messages = chat["messages"].as_array().unwrap();
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}
        ]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "content": "Error: denied", "tool_call_id": "t1"})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "content": "here", "tool_call_id": "t2"})
    );
    assert_eq!(
        messages[4],
        json!({"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
        ]})
    );
}

#[test]
fn structured_output_and_stop_sequences_are_translated() {
    let chat = chat_of(&json!({
        "messages": [{"role": "user", "content": "json please"}],
        "stop_sequences": ["END"],
        "top_p": 0.5,
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "high"}
    }));
    assert_eq!(chat["stop"], json!(["END"]));
    assert_eq!(chat["top_p"], 0.5);
    assert_eq!(
        chat["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": true}})
    );
}

#[test]
fn effort_and_thinking_budgets_become_a_reasoning_effort() {
    let effort = |extra: Value| {
        let mut body = json!({"messages": [{"role": "user", "content": "think"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        chat_of(&body).get("reasoning_effort").cloned()
    };
    let budget = |n: u64| effort(json!({"thinking": {"type": "enabled", "budget_tokens": n}}));
    assert_eq!(budget(1024), Some(json!("low")));
    assert_eq!(budget(10000), Some(json!("medium")));
    assert_eq!(budget(31999), Some(json!("high")));
    assert_eq!(effort(json!({"thinking": {"type": "adaptive"}})), None);
    assert_eq!(effort(json!({"thinking": {"type": "disabled"}})), None);
    assert_eq!(effort(json!({})), None);
    assert_eq!(
        effort(
            json!({"output_config": {"effort": "max"}, "thinking": {"type": "enabled", "budget_tokens": 1024}})
        ),
        Some(json!("high")),
        "effort says it outright"
    );
    assert_eq!(
        effort(json!({"output_config": {"effort": "medium"}})),
        Some(json!("medium"))
    );
}

#[test]
fn what_cannot_be_served_is_refused_naming_the_field() {
    let cases = [
        (r#"{"max_tokens":5}"#, Some("messages")),
        (r#"{"messages":[]}"#, Some("messages")),
        (r#"{"messages":"hi"}"#, Some("messages")),
        (
            r#"{"messages":[{"role":"system","content":"x"}]}"#,
            Some("messages[0].role"),
        ),
        (
            r#"{"messages":[{"content":"x"}]}"#,
            Some("messages[0].role"),
        ),
        (
            r#"{"messages":[{"role":"user"}]}"#,
            Some("messages[0].content"),
        ),
        (
            r#"{"messages":[{"role":"user","content":5}]}"#,
            Some("messages[0].content"),
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"text":"x"}]}]}"#,
            Some("messages[0].content[0].type"),
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"search_result","source":"s","title":"t","content":[]}]}]}"#,
            Some("messages[0].content[0].type"),
        ),
        (
            r#"{"messages":[{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}]}"#,
            Some("messages[0].content[0].type"),
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"}}]}]}"#,
            Some("messages[0].content[0].source.type"),
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#,
            Some("messages[0].content[0].source.type"),
        ),
        (
            r#"{"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]}"#,
            Some("messages[0].content[0].id"),
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"tool_result"}]}]}"#,
            Some("messages[0].content[0].tool_use_id"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
            Some("tools[0].type"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}]}"#,
            Some("tools[0].input_schema"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"tool"}}"#,
            Some("tool_choice.name"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"maybe"}}"#,
            Some("tool_choice.type"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"mcp_servers":[{"type":"url","url":"https://mcp","name":"m"}]}"#,
            Some("mcp_servers"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
            Some("max_tokens"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":"many"}"#,
            Some("max_tokens"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"stop_sequences":[1]}"#,
            Some("stop_sequences[0]"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
            Some("temperature"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"system":[{"type":"image"}]}"#,
            Some("system[0].type"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"model":7}"#,
            Some("model"),
        ),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"output_config":{"format":{"type":"xml"}}}"#,
            Some("output_config.format.type"),
        ),
        ("[1,2]", None),
        ("{not json", None),
    ];
    for (body, param) in cases {
        let refused = refusal(body);
        assert_eq!(
            refused.param.as_deref(),
            param,
            "{body}: {}",
            refused.message
        );
        if let Some(param) = param {
            assert!(refused.message.starts_with(param), "{}", refused.message);
        }
    }
}

#[test]
fn a_chat_completion_becomes_a_message() {
    let completion = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "llama-3.3-70b",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "I'll check the current weather in Paris for you.",
            "tool_calls": [{"id": "call_9", "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]
        }}],
        "usage": {"prompt_tokens": 377, "completion_tokens": 65, "total_tokens": 442,
                  "prompt_tokens_details": {"cached_tokens": 100}}
    });
    let message = to_message(
        completion.to_string().as_bytes(),
        "msg_1",
        "llama-3.3-70b",
        &asked(),
    )
    .unwrap();
    assert_eq!(
        message,
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "llama-3.3-70b",
            "content": [
                {"type": "text", "text": "I'll check the current weather in Paris for you."},
                {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"location": "Paris"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 277, "output_tokens": 65,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100}
        })
    );
}

#[test]
fn finish_reasons_map_to_stop_reasons() {
    let answer = |choice: Value| {
        let body = json!({"choices": [choice]}).to_string();
        to_message(body.as_bytes(), "msg", "m", &asked()).unwrap()
    };
    let text = |finish: &str| json!({"finish_reason": finish, "message": {"content": "x"}});
    assert_eq!(answer(text("stop"))["stop_reason"], "end_turn");
    assert_eq!(answer(text("length"))["stop_reason"], "max_tokens");
    assert_eq!(answer(text("content_filter"))["stop_reason"], "refusal");
    let matched = answer(
        json!({"finish_reason": "stop", "stop_reason": "\n\nHuman:", "message": {"content": "x"}}),
    );
    assert_eq!(matched["stop_reason"], "stop_sequence");
    assert_eq!(matched["stop_sequence"], "\n\nHuman:");
    let token_id = answer(
        json!({"finish_reason": "stop", "stop_reason": 128009, "message": {"content": "x"}}),
    );
    assert_eq!(token_id["stop_reason"], "end_turn");
    // A provider that ends tool calls with `stop`: the client must still run them.
    let calls = answer(
        json!({"finish_reason": "stop", "message": {"content": null, "tool_calls": [
            {"id": "c", "function": {"name": "f", "arguments": "not json"}}
        ]}}),
    );
    assert_eq!(calls["stop_reason"], "tool_use");
    assert_eq!(
        calls["content"][0]["input"],
        json!({"arguments": "not json"})
    );
    assert!(to_message(b"{}", "msg", "m", &asked()).is_err());
}

/// The chat stream the engine forwards, as its events' data: the chunks, then `[DONE]`.
fn chat_stream(chunks: &[Value]) -> Vec<String> {
    let mut events: Vec<String> = chunks.iter().map(Value::to_string).collect();
    events.push("[DONE]".to_string());
    events
}

fn delta(delta: Value) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
}

fn finish(reason: &str) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion}})
}

/// `(event name, data)` of an Anthropic stream, checking each event's name is its data's type.
fn events(stream: &str) -> Vec<(String, Value)> {
    stream
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut lines = e.lines();
            let name = lines
                .next()
                .unwrap()
                .strip_prefix("event: ")
                .unwrap()
                .to_string();
            let data: Value =
                serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                    .unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

fn translate(chat: &[String]) -> Vec<(String, Value)> {
    let mut translator = StreamTranslator::new("msg_1".into(), "m".into(), 11, asked());
    let mut out = translator.start();
    for data in chat {
        out.push_str(&translator.push(data));
    }
    out.push_str(&translator.end());
    events(&out)
}

#[test]
fn a_text_stream_has_the_event_sequence_of_the_sdks_basic_fixture() {
    let chat = chat_stream(&[
        delta(json!({"role": "assistant", "content": ""})),
        delta(json!({"content": "Hello"})),
        delta(json!({"content": " there"})),
        delta(json!({"content": "!"})),
        finish("stop"),
        usage(11, 6),
    ]);
    let seen = translate(&chat);
    // tests/lib/streaming/fixtures/basic_response.txt, less its ids and model.
    let expected = [
        (
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":0}}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        (
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}),
        ),
        (
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}),
        ),
        (
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}),
        ),
        (
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        (
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":11,"output_tokens":6,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}),
        ),
        ("message_stop", json!({"type":"message_stop"})),
    ];
    let expected: Vec<(String, Value)> = expected
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_tool_call_stream_has_the_event_sequence_of_the_sdks_tool_use_fixture() {
    let chat = chat_stream(&[
        delta(json!({"role": "assistant", "content": ""})),
        delta(json!({"content": "I'll check the current weather in Paris for you."})),
        delta(
            json!({"tool_calls": [{"index": 0, "id": "toolu_019", "type": "function",
                                      "function": {"name": "get_weather", "arguments": ""}}]}),
        ),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"locati"}}]})),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "on\": \"P"}}]})),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "aris\"}"}}]})),
        delta(json!({"tool_calls": [{"index": 1, "id": "toolu_020",
                                      "function": {"name": "get_time", "arguments": "{}"}}]})),
        finish("tool_calls"),
        usage(377, 65),
    ]);
    let seen = translate(&chat);
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        seen[5].1,
        json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_019","name":"get_weather","input":{}}})
    );
    let partial: String = seen[6..9]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            assert_eq!(d["index"], 1);
            d["delta"]["partial_json"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"location": "Paris"})
    );
    assert_eq!(seen[10].1["content_block"]["name"], "get_time");
    assert_eq!(seen[10].1["index"], 2);
    assert_eq!(seen[13].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(seen[13].1["usage"]["output_tokens"], 65);
}

#[test]
fn an_interrupted_stream_ends_with_an_error_event_and_no_message_stop() {
    let chat = [
        delta(json!({"content": "Half an ans"})).to_string(),
        json!({"error": {"message": "the upstream stream broke off and no route could continue the answer",
                         "type": "server_error", "code": "stream_interrupted", "param": null}})
        .to_string(),
    ];
    let seen = translate(&chat);
    let (name, data) = seen.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(
        data["error"]["message"]
            .as_str()
            .unwrap()
            .contains("broke off")
    );
    assert!(seen.iter().all(|(n, _)| n != "message_stop"));

    let cut = [delta(json!({"content": "Half"})).to_string()];
    let seen = translate(&cut);
    assert_eq!(
        seen.last().unwrap().0,
        "error",
        "a stream that just stops is not complete"
    );
    assert!(seen.iter().all(|(n, _)| n != "message_stop"));
}

#[test]
fn count_tokens_grows_with_the_prompt_and_counts_tools() {
    let count = |body: Value| {
        count_tokens(body.to_string().as_bytes(), &tiers()).unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
    };
    let small = count(
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hello, Claude"}]}),
    );
    let long = count(
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x".repeat(4000)}]}),
    );
    let with_tools = count(json!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Hello, Claude"}],
        "tools": [{"name": "get_weather", "description": "d".repeat(400), "input_schema": {"type": "object"}}]}));
    assert!(small > 0 && small < 20, "{small}");
    assert!(long >= 1000, "{long}");
    assert!(with_tools >= small + 100, "{with_tools}");
}
