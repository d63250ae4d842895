//! Legacy text completions (`POST /v1/completions`, Continue's autocomplete) through chat routes:
//! the prompt becomes a user message under a short instruction to continue it (or, with a
//! `suffix`, to fill the gap), the chat answer comes back in the `text_completion` shape, whole or
//! streamed (`data: [DONE]` and the engine's error event passed on as they are).
//!
//! Fields: `model`, `max_tokens`, `temperature`, `top_p`, `n`, `stop`, `presence_penalty`,
//! `frequency_penalty`, `seed`, `logit_bias`, `stream`, `stream_options` are the same in chat and
//! passed on (an absent `max_tokens` is left absent: the route's default, not the legacy 16).
//! `prompt` is translated: a string, or an array holding one string; several prompts in one
//! request and token arrays are refused (each prompt is its own routed request; no tokenizer
//! here knows every route's tokens). `suffix` is translated into the instruction. `echo` is
//! translated: the prompt is put before each choice's text. `logprobs`, `best_of` and `user` are
//! dropped (`logprobs` comes back `null`; one sample is the answer).

use crate::providers::body::{JsonObject, raw};
use crate::routing::InvalidRequest;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

const CONTINUE: &str = "Complete the user's text. Reply with only the text that comes next, \
    exactly as it would continue: no preamble, no explanation, no repetition of the given text.";
const FILL: &str = "Fill the gap between the text in <before> and the text in <after>. Reply with \
    only the text that goes in the gap: no tags, no preamble, no explanation.";

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.to_string()),
    }
}

/// The fields read or passed on; the rest are dropped.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    prompt: Option<&'a RawValue>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    echo: Option<bool>,
    #[serde(default, borrow)]
    stream: Option<&'a RawValue>,
    #[serde(default, borrow)]
    stream_options: Option<&'a RawValue>,
    #[serde(default, borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(default, borrow)]
    top_p: Option<&'a RawValue>,
    #[serde(default, borrow)]
    n: Option<&'a RawValue>,
    #[serde(default, borrow)]
    stop: Option<&'a RawValue>,
    #[serde(default, borrow)]
    presence_penalty: Option<&'a RawValue>,
    #[serde(default, borrow)]
    frequency_penalty: Option<&'a RawValue>,
    #[serde(default, borrow)]
    seed: Option<&'a RawValue>,
    #[serde(default, borrow)]
    logit_bias: Option<&'a RawValue>,
}

/// A translated request.
pub struct Translated {
    /// A chat completions body.
    pub chat: Vec<u8>,
    /// The prompt, when `echo` asks for it before the text.
    pub echo: Option<String>,
}

/// Translates a completions body into a chat completions body.
pub fn translate(bytes: &[u8]) -> Result<Translated, InvalidRequest> {
    let text = std::str::from_utf8(bytes).map_err(|e| InvalidRequest {
        message: format!("the request body is not valid UTF-8: {e}"),
        param: None,
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(InvalidRequest {
            message: "the request body must be a JSON object".into(),
            param: None,
        });
    }
    let body: Body<'_> = serde_json::from_str(text).map_err(|e| InvalidRequest {
        message: format!("the request body is not a valid completions request: {e}"),
        param: None,
    })?;
    let prompt = prompt(body.prompt)?;
    let (instruction, user) = match body.suffix.as_deref().filter(|s| !s.is_empty()) {
        None => (CONTINUE, prompt.clone()),
        Some(suffix) => (
            FILL,
            format!("<before>{prompt}</before><after>{suffix}</after>"),
        ),
    };
    let messages = json!([
        {"role": "system", "content": instruction},
        {"role": "user", "content": user},
    ]);
    let mut fields = vec![("messages".to_string(), raw(&messages))];
    if let Some(model) = body.model.filter(|m| m.get() != "null") {
        fields.insert(0, ("model".to_string(), Arc::from(model.to_owned())));
    }
    fields.extend(
        [
            ("stream", body.stream),
            ("stream_options", body.stream_options),
            ("max_tokens", body.max_tokens),
            ("temperature", body.temperature),
            ("top_p", body.top_p),
            ("n", body.n),
            ("stop", body.stop),
            ("presence_penalty", body.presence_penalty),
            ("frequency_penalty", body.frequency_penalty),
            ("seed", body.seed),
            ("logit_bias", body.logit_bias),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            value
                .filter(|v| v.get() != "null")
                .map(|v| (name.to_string(), Arc::from(v.to_owned())))
        }),
    );
    Ok(Translated {
        chat: JsonObject::from_fields(fields).to_bytes(),
        echo: body.echo.unwrap_or(false).then_some(prompt),
    })
}

fn prompt(raw: Option<&RawValue>) -> Result<String, InvalidRequest> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Err(invalid("`prompt` is required", "prompt"));
    };
    if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
        return Ok(text);
    }
    match crate::api::bounded::items(raw).ok_or(()).as_deref() {
        Ok([one]) => match serde_json::from_str::<String>(one.get()) {
            Ok(text) => Ok(text),
            Err(_) => Err(invalid(
                "`prompt` as tokens is not served: no tokenizer here knows every route's; send the text",
                "prompt",
            )),
        },
        Ok([]) => Err(invalid("`prompt` must not be empty", "prompt")),
        Ok(many) if many.iter().all(|p| p.get().starts_with('"')) => Err(invalid(
            "`prompt` holds several prompts: send one request per prompt",
            "prompt",
        )),
        Ok(_) => Err(invalid(
            "`prompt` as tokens is not served: no tokenizer here knows every route's; send the text",
            "prompt",
        )),
        Err(_) => Err(invalid(
            "`prompt` must be a string or an array of strings",
            "prompt",
        )),
    }
}

/// A legacy completion's `finish_reason` from a chat one.
fn finish(reason: Option<&str>) -> Value {
    match reason {
        None => Value::Null,
        Some(reason @ ("length" | "content_filter")) => json!(reason),
        Some(_) => json!("stop"),
    }
}

/// A chat completion body as a `text_completion`; `id` and `created` are the gateway's.
pub fn from_completion(completion: &[u8], id: &str, created: i64, echo: Option<&str>) -> Value {
    let completion: Value = serde_json::from_slice(completion).unwrap_or(Value::Null);
    let choices: Vec<Value> = completion["choices"]
        .as_array()
        .map(|choices| {
            choices
                .iter()
                .enumerate()
                .map(|(i, choice)| {
                    let text =
                        crate::providers::answer::text_of(choice.pointer("/message/content"));
                    json!({
                        "text": format!("{}{text}", echo.unwrap_or_default()),
                        "index": choice["index"].as_u64().unwrap_or(i as u64),
                        "logprobs": null,
                        "finish_reason": finish(choice["finish_reason"].as_str()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": completion["model"],
        "choices": choices,
    });
    if let Some(usage) = completion.get("usage").filter(|u| u.is_object()) {
        out["usage"] = usage_of(usage);
    }
    out
}

fn usage_of(usage: &Value) -> Value {
    let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let completion = usage["completion_tokens"].as_u64().unwrap_or(0);
    json!({"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt.saturating_add(completion)})
}

/// Translates a chat stream's events into `text_completion` chunks.
pub struct CompletionStream {
    id: String,
    created: i64,
    echo: Option<String>,
    echoed: BTreeSet<u64>,
}

impl CompletionStream {
    pub fn new(id: String, created: i64, echo: Option<String>) -> Self {
        Self {
            id,
            created,
            echo,
            echoed: BTreeSet::new(),
        }
    }

    /// One chat event's data in, the data of the chunk to send out (`None`: nothing to send).
    pub fn push(&mut self, data: &str) -> Option<String> {
        if data.trim() == "[DONE]" {
            return Some("[DONE]".into());
        }
        let chunk: Value = serde_json::from_str(data).ok()?;
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return Some(data.to_string());
        }
        let mut choices = Vec::new();
        for (i, choice) in chunk["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = choice["index"].as_u64().unwrap_or(i as u64);
            let mut text = crate::providers::answer::text_of(choice.pointer("/delta/content"));
            let finish_reason = finish(choice["finish_reason"].as_str());
            if text.is_empty() && finish_reason.is_null() {
                continue;
            }
            if let Some(echo) = &self.echo
                && self.echoed.insert(index)
            {
                text.insert_str(0, echo);
            }
            choices.push(json!({"text": text, "index": index, "logprobs": null,
                                "finish_reason": finish_reason}));
        }
        let usage = chunk.get("usage").filter(|u| u.is_object()).map(usage_of);
        if choices.is_empty() && usage.is_none() {
            return None;
        }
        let mut out = json!({
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": chunk["model"],
            "choices": choices,
        });
        if let Some(usage) = usage {
            out["usage"] = usage;
        }
        Some(out.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<(Value, Option<String>), InvalidRequest> {
        let t = translate(body.as_bytes())?;
        Ok((serde_json::from_slice(&t.chat).unwrap(), t.echo))
    }

    #[test]
    fn a_prompt_becomes_a_continuation_request_with_the_shared_fields() {
        let (body, echo) = chat(
            r#"{"model":"auto","prompt":["def add(a, b):"],"max_tokens":20,"stop":["\n\n"],
                "temperature":0,"stream":true,"logprobs":2,"best_of":3,"user":"u"}"#,
        )
        .unwrap();
        assert_eq!(body["model"], "auto");
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(
            body["messages"][1],
            json!({"role":"user","content":"def add(a, b):"})
        );
        assert_eq!(body["max_tokens"], 20);
        assert_eq!(body["stop"], json!(["\n\n"]));
        assert_eq!(body["stream"], true);
        for dropped in ["logprobs", "best_of", "user", "prompt"] {
            assert!(body.get(dropped).is_none(), "{dropped}");
        }
        assert!(echo.is_none());
        let (fim, _) = chat(r#"{"prompt":"let x = ","suffix":";"}"#).unwrap();
        assert_eq!(
            fim["messages"][1]["content"],
            "<before>let x = </before><after>;</after>"
        );
        assert!(fim.get("model").is_none());
    }

    #[test]
    fn prompts_that_cannot_be_one_chat_request_are_refused() {
        for body in [
            "{}",
            r#"{"prompt":[]}"#,
            r#"{"prompt":["a","b"]}"#,
            r#"{"prompt":[1,2,3]}"#,
            r#"{"prompt":[[1,2]]}"#,
            r#"{"prompt":7}"#,
        ] {
            assert_eq!(
                chat(body).unwrap_err().param.as_deref(),
                Some("prompt"),
                "{body}"
            );
        }
        assert!(chat("[]").unwrap_err().param.is_none());
    }

    #[test]
    fn a_chat_answer_comes_back_as_a_text_completion() {
        let completion = json!({"model":"m-1","choices":[{"index":0,"finish_reason":"stop",
            "message":{"role":"assistant","content":" return a + b"}}],
            "usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}});
        let out = from_completion(completion.to_string().as_bytes(), "cmpl-1", 5, Some("def"));
        assert_eq!(
            out,
            json!({"id":"cmpl-1","object":"text_completion","created":5,"model":"m-1",
                   "choices":[{"text":"def return a + b","index":0,"logprobs":null,"finish_reason":"stop"}],
                   "usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}})
        );
    }

    #[test]
    fn a_chat_stream_becomes_text_completion_chunks() {
        let mut s = CompletionStream::new("cmpl-1".into(), 5, None);
        let role =
            r#"{"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
        assert!(s.push(role).is_none());
        let text: Value = serde_json::from_str(
            &s.push(r#"{"model":"m","choices":[{"index":0,"delta":{"content":"ret"}}]}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(text["object"], "text_completion");
        assert_eq!(text["choices"][0]["text"], "ret");
        assert_eq!(text["choices"][0]["finish_reason"], Value::Null);
        let end: Value = serde_json::from_str(
            &s.push(
                r#"{"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(end["choices"][0]["finish_reason"], "stop");
        let usage: Value = serde_json::from_str(
            &s.push(r#"{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(usage["usage"]["total_tokens"], 3);
        let error = r#"{"error":{"code":"stream_interrupted","message":"x"}}"#;
        assert_eq!(s.push(error).as_deref(), Some(error));
        assert_eq!(s.push("[DONE]").as_deref(), Some("[DONE]"));
        let mut echo = CompletionStream::new("c".into(), 1, Some("Once".into()));
        let first: Value = serde_json::from_str(
            &echo
                .push(r#"{"choices":[{"index":0,"delta":{"content":" upon"}}]}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(first["choices"][0]["text"], "Once upon");
    }
}
