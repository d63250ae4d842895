//! Reading an upstream answer without building a JSON tree: what one streamed chunk or one whole
//! completion carries (content, reasoning, tool calls, the finish, usage, the model, an error).
//! The bytes themselves are forwarded as they came; only these facts are read from them.
//!
//! Each answer is read through borrowed, typed views first (cheap); an answer that is valid JSON but
//! of a shape the views do not expect (a number where a string was, say) is read again as a `Value`,
//! as tolerantly as before, so no answer is lost to a stricter reader.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Token usage as the upstream reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn from_json(usage: &Value) -> Option<Usage> {
        let prompt_tokens = usage.get("prompt_tokens")?.as_u64()?;
        Some(Usage {
            prompt_tokens,
            completion_tokens: usage
                .get("completion_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    /// Prompt and completion tokens together, saturating (an upstream may report anything).
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// What the gateway needs to know about one `chat.completion.chunk`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkInfo {
    /// The text content of choice 0's delta.
    pub content: String,
    pub has_reasoning: bool,
    pub has_tool_calls: bool,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub is_error: bool,
    /// The model the chunk says answered.
    pub model: Option<String>,
}

impl ChunkInfo {
    /// Reads one event's data; `None` when it is not JSON at all (the event is skipped).
    pub fn parse(data: &str) -> Option<ChunkInfo> {
        if let Ok(view) = serde_json::from_str::<ChunkView<'_>>(data)
            && data.trim_start().starts_with('{')
        {
            return Some(view.into_info());
        }
        let value: Value = serde_json::from_str(data).ok()?;
        Some(ChunkInfo::inspect(&value))
    }

    /// The same from a parsed chunk (a rescue that rewrites a chunk has one).
    pub fn inspect(chunk: &Value) -> ChunkInfo {
        let mut info = ChunkInfo {
            is_error: chunk.get("error").is_some_and(|e| !e.is_null()),
            usage: chunk.get("usage").and_then(Usage::from_json),
            model: chunk
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..ChunkInfo::default()
        };
        let Some(choice) = chunk.pointer("/choices/0") else {
            return info;
        };
        info.finish_reason = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(delta) = choice.get("delta") {
            let reply = MessageFacts::of_value(delta);
            info.content = reply.text;
            info.has_reasoning = reply.has_reasoning;
            info.has_tool_calls = reply.has_tool_calls;
        }
        info
    }

    /// The first chunk with content, reasoning or a tool call: from here the client has part of the answer.
    pub fn is_commit_point(&self) -> bool {
        !self.content.is_empty() || self.has_reasoning || self.has_tool_calls
    }
}

/// What a whole (non-streamed) completion carries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompletionInfo {
    /// Choice 0's message text.
    pub content: String,
    /// Choice 0 holds text, reasoning or a tool call.
    pub has_answer: bool,
    pub has_choices: bool,
    pub is_error: bool,
    pub usage: Option<Usage>,
    pub model: Option<String>,
}

impl CompletionInfo {
    /// Reads a completion body; `None` when it is not a JSON object.
    pub fn parse(body: &[u8]) -> Option<CompletionInfo> {
        let text = std::str::from_utf8(body).ok()?;
        if !text.trim_start().starts_with('{') {
            return None;
        }
        if let Ok(view) = serde_json::from_str::<CompletionView<'_>>(text) {
            return Some(view.into_info());
        }
        let value: Value = serde_json::from_str(text).ok()?;
        Some(CompletionInfo::inspect(&value))
    }

    pub fn inspect(json: &Value) -> CompletionInfo {
        let message = json.pointer("/choices/0/message");
        let facts = message.map(MessageFacts::of_value).unwrap_or_default();
        CompletionInfo {
            has_answer: message.is_some() && facts.is_answer(),
            content: facts.text,
            has_choices: json.get("choices").is_some(),
            is_error: json.get("error").is_some_and(|e| !e.is_null()),
            usage: json.get("usage").and_then(Usage::from_json),
            model: json
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

/// What a message or a delta holds.
#[derive(Default)]
struct MessageFacts {
    text: String,
    has_reasoning: bool,
    has_tool_calls: bool,
}

impl MessageFacts {
    fn is_answer(&self) -> bool {
        !self.text.is_empty() || self.has_reasoning || self.has_tool_calls
    }

    fn of_value(message: &Value) -> MessageFacts {
        MessageFacts {
            text: text_of(message.get("content")),
            has_reasoning: ["reasoning_content", "reasoning"].iter().any(|f| {
                message
                    .get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            }),
            has_tool_calls: message
                .get("tool_calls")
                .and_then(Value::as_array)
                .is_some_and(|calls| !calls.is_empty())
                || message.get("function_call").is_some_and(|f| !f.is_null()),
        }
    }
}

/// A content field as text: a string, or the text parts of an array (Mistral).
pub fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceView<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    delta: Option<MessageView<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(default)]
    content: Option<ContentText>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
}

impl MessageView<'_> {
    fn facts(self) -> MessageFacts {
        MessageFacts {
            text: self.content.map(|c| c.0).unwrap_or_default(),
            has_reasoning: [&self.reasoning_content, &self.reasoning]
                .iter()
                .any(|r| r.as_ref().is_some_and(|s| !s.is_empty())),
            has_tool_calls: self.tool_calls.is_some_and(|c| !c.is_empty())
                || self.function_call.is_some(),
        }
    }
}

impl ChunkView<'_> {
    fn into_info(self) -> ChunkInfo {
        let mut info = ChunkInfo {
            is_error: self.error.is_some(),
            usage: self.usage.as_ref().and_then(Usage::from_json),
            model: self.model.map(Cow::into_owned),
            ..ChunkInfo::default()
        };
        if let Some(choice) = self.choices.and_then(|c| c.into_iter().next()) {
            info.finish_reason = choice.finish_reason.map(Cow::into_owned);
            if let Some(delta) = choice.delta {
                let facts = delta.facts();
                info.content = facts.text;
                info.has_reasoning = facts.has_reasoning;
                info.has_tool_calls = facts.has_tool_calls;
            }
        }
        info
    }
}

#[derive(Deserialize)]
struct CompletionView<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<CompletionChoiceView<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct CompletionChoiceView<'a> {
    #[serde(default, borrow)]
    message: Option<MessageView<'a>>,
}

impl CompletionView<'_> {
    fn into_info(self) -> CompletionInfo {
        let has_choices = self.choices.is_some();
        let message = self
            .choices
            .and_then(|c| c.into_iter().next())
            .and_then(|c| c.message);
        let (has_answer, content) = match message {
            Some(message) => {
                let facts = message.facts();
                (facts.is_answer(), facts.text)
            }
            None => (false, String::new()),
        };
        CompletionInfo {
            content,
            has_answer,
            has_choices,
            is_error: self.error.is_some(),
            usage: self.usage.as_ref().and_then(Usage::from_json),
            model: self.model.map(Cow::into_owned),
        }
    }
}

/// Message content as text: a string as it is, an array as its parts' `text`s, `null` as nothing.
struct ContentText(String);

impl<'de> Deserialize<'de> for ContentText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = ContentText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ContentText, E> {
                Ok(ContentText(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<ContentText, E> {
                Ok(ContentText(s))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ContentText, E> {
                Ok(ContentText(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<ContentText, E> {
                Ok(ContentText(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut parts: A) -> Result<ContentText, A::Error> {
                #[derive(Deserialize)]
                struct Part<'a> {
                    #[serde(default, borrow)]
                    text: Option<Cow<'a, str>>,
                }
                let mut text = String::new();
                while let Some(part) = parts.next_element::<Part<'de>>()? {
                    if let Some(t) = part.text {
                        text.push_str(&t);
                    }
                }
                Ok(ContentText(text))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn both(chunk: Value) -> ChunkInfo {
        let typed = ChunkInfo::parse(&chunk.to_string()).expect("JSON");
        assert_eq!(
            typed,
            ChunkInfo::inspect(&chunk),
            "the two readers agree on {chunk}"
        );
        typed
    }

    #[test]
    fn a_role_only_chunk_is_not_the_commit_point_but_content_is() {
        let role = json!({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]});
        assert!(!both(role).is_commit_point());
        let text = json!({"model":"m","choices":[{"index":0,"delta":{"content":" hi \"x\""}}]});
        let info = both(text);
        assert_eq!(info.content, " hi \"x\"");
        assert_eq!(info.model.as_deref(), Some("m"));
        let tool = json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]});
        assert!(both(tool).is_commit_point());
        let parts =
            json!({"choices":[{"delta":{"content":[{"type":"text","text":"a"},{"text":"b"}]}}]});
        assert_eq!(both(parts).content, "ab");
        let reasoning = json!({"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]});
        assert!(both(reasoning).is_commit_point());
    }

    #[test]
    fn usage_finish_and_errors_are_seen() {
        let usage = json!({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}});
        assert_eq!(
            both(usage).usage,
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 5
            })
        );
        let fin = json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]});
        assert_eq!(both(fin).finish_reason.as_deref(), Some("stop"));
        assert!(both(json!({"error":{"message":"x"}})).is_error);
        assert!(!both(json!({"error":null,"choices":[]})).is_error);
    }

    #[test]
    fn an_odd_shape_is_read_tolerantly_and_non_json_is_refused() {
        let odd = json!({"choices":[{"delta":{"content":"x","reasoning":{"effort":"high"}}}],
            "usage":{"prompt_tokens":1.5}});
        let info = ChunkInfo::parse(&odd.to_string()).expect("valid JSON is read");
        assert_eq!(info.content, "x");
        assert!(ChunkInfo::parse("{not json").is_none());
    }

    #[test]
    fn usage_an_upstream_reports_as_huge_saturates_instead_of_wrapping() {
        let info = CompletionInfo::parse(
            format!(
                r#"{{"choices":[{{"message":{{"content":"x"}}}}],"usage":{{"prompt_tokens":{},"completion_tokens":{}}}}}"#,
                u64::MAX,
                u64::MAX
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(info.usage.map(|u| u.total()), Some(u64::MAX));
    }

    #[test]
    fn an_empty_completion_has_no_answer_and_usage_is_read() {
        let empty = CompletionInfo::parse(br#"{"choices":[{"message":{"content":""}}]}"#).unwrap();
        assert!(!empty.has_answer && empty.has_choices);
        let parts = CompletionInfo::parse(
            br#"{"model":"m","choices":[{"message":{"content":[{"type":"text","text":"x"}]}}],
                "usage":{"prompt_tokens":2,"completion_tokens":3}}"#,
        )
        .unwrap();
        assert!(parts.has_answer);
        assert_eq!(parts.content, "x");
        assert_eq!(parts.usage.map(|u| u.total()), Some(5));
        let error = CompletionInfo::parse(br#"{"error":{"message":"no"}}"#).unwrap();
        assert!(error.is_error && !error.has_choices);
        assert!(CompletionInfo::parse(b"[1]").is_none());
        assert!(CompletionInfo::parse(b"nope").is_none());
    }
}
