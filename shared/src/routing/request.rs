//! The client's chat request, parsed once at the boundary into what routing needs (model, stream,
//! size estimate, capability tags, the conversation's opening) and its fields as raw JSON text:
//! no tree is built of what the client sent, so a body padded with a million `0`s costs its bytes,
//! not a million nodes, and each upstream body is spliced from the same texts.

use super::fields::FieldPolicy;
use super::sessions;
use crate::providers::body::{JsonObject, raw_string};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Why a request body was refused (400 `invalid_request`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    pub message: String,
    pub param: Option<String>,
}

pub(crate) fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.to_string()),
    }
}

fn invalid_body(message: impl Into<String>) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: None,
    }
}

/// More messages than this in one request is refused.
pub const MAX_MESSAGES: usize = 10_000;

/// Prompt tokens counted for one image, whatever its size.
const IMAGE_TOKENS: u64 = 800;

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// A validated chat completion request.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// What the client asked for (`auto` when absent or empty).
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<u64>,
    /// `n`: how many choices were asked for.
    pub choices: u64,
    prompt_tokens: u64,
    tags: Vec<&'static str>,
    /// The conversation's opening, when the request continues one (sticky sessions).
    pub opening: Option<u64>,
    /// The fields that may reach an upstream, raw, `model` left out (each route sets its own).
    fields: JsonObject,
}

impl ChatRequest {
    /// Parses a request body; fields `policy` lets no upstream see are dropped here.
    pub fn parse(bytes: &[u8], policy: &FieldPolicy) -> Result<Self, InvalidRequest> {
        let TopLevel(fields) = top_level(bytes)?;
        let field = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .filter(|v| v.get() != "null")
        };

        let model = match field("model") {
            None => "auto".to_string(),
            Some(raw) => {
                let model: Cow<'_, str> = typed(raw, "`model` must be a string", "model")?;
                match model.trim() {
                    "" => "auto".to_string(),
                    name => name.to_string(),
                }
            }
        };
        let messages = parse_messages(field("messages"))?;
        let stream: bool =
            optional(field("stream"), "`stream` must be a boolean", "stream")?.unwrap_or(false);
        let include_usage = match field("stream_options") {
            None => false,
            Some(raw) if !raw.get().starts_with('{') => {
                return Err(invalid(
                    "`stream_options` must be an object",
                    "stream_options",
                ));
            }
            Some(raw) => {
                let options: StreamOptions = typed(
                    raw,
                    "`stream_options.include_usage` must be a boolean",
                    "stream_options.include_usage",
                )?;
                options.include_usage.unwrap_or(false)
            }
        };
        let mut max_tokens = None;
        for name in ["max_tokens", "max_completion_tokens"] {
            // The message is written only for a field that is there (a parse runs per request).
            let Some(raw) = field(name) else { continue };
            let message = format!("`{name}` must be a non-negative integer");
            if let Some(n) = optional::<u64>(Some(raw), &message, name)? {
                // Capped so that sums with it cannot overflow; the body keeps the client's value.
                let n = n.min(u64::from(u32::MAX));
                max_tokens = Some(max_tokens.map_or(n, |m: u64| m.max(n)));
            }
        }
        for name in [
            "temperature",
            "top_p",
            "presence_penalty",
            "frequency_penalty",
        ] {
            if let Some(raw) = field(name) {
                typed::<f64>(raw, &format!("`{name}` must be a number"), name)?;
            }
        }
        let choices = optional::<u64>(field("n"), "`n` must be a positive integer", "n")?;
        let tools = field("tools");
        if tools.is_some_and(|t| !t.get().starts_with('[')) {
            return Err(invalid("`tools` must be an array", "tools"));
        }

        let mut tags = Vec::new();
        let (mut functions, mut searches) = (false, false);
        for raw in [tools, field("functions")].into_iter().flatten() {
            if let Ok(ToolList(kinds)) = serde_json::from_str::<ToolList>(raw.get()) {
                for kind in kinds {
                    match kind.as_deref() {
                        Some("web_search_preview" | "web_search") => searches = true,
                        _ => functions = true,
                    }
                }
            }
        }
        if functions {
            tags.push("tools");
        }
        if searches {
            tags.push("web-search");
        }
        if messages.iter().any(|m| m.images > 0) {
            tags.push("vision");
        }
        let json_mode = field("response_format")
            .and_then(|raw| serde_json::from_str::<KindOnly>(raw.get()).ok())
            .is_some_and(|f| matches!(f.kind.as_deref(), Some("json_object" | "json_schema")));
        if json_mode {
            tags.push("json");
        }

        let mut chars = tools.map_or(0, |t| t.get().len());
        let mut prompt_tokens = 0u64;
        for message in &messages {
            prompt_tokens += 4 + u64::from(message.images) * IMAGE_TOKENS;
            chars += message.text_bytes + message.tool_calls_bytes;
        }
        prompt_tokens += (chars as u64).div_ceil(4);
        let opening = sessions::opening(messages.iter().map(|m| (m.role.as_ref(), m.raw.get())));

        let mut kept = Vec::with_capacity(fields.len());
        for (name, raw) in &fields {
            if name == "model" || !policy.keeps(name) {
                continue;
            }
            kept.push((name.to_string(), Arc::from((*raw).to_owned())));
        }
        Ok(Self {
            model,
            stream,
            include_usage,
            max_tokens,
            choices: choices.unwrap_or(1),
            prompt_tokens,
            tags,
            opening,
            fields: JsonObject::from_fields(kept),
        })
    }

    /// A rough prompt size: characters / 4 plus a few tokens a message, images at a flat rate.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        self.prompt_tokens
    }

    /// The capability tags a route needs to serve this request: `tools`, `vision`, `json`, and
    /// `web-search` when the caller sent a web-search tool of its own.
    pub fn required_tags(&self) -> Vec<&'static str> {
        self.tags.clone()
    }

    /// A field as the client sent it (when kept).
    pub fn field(&self, name: &str) -> Option<&RawValue> {
        self.fields.get(name)
    }

    /// The body for one upstream: the kept fields that `reaches` lets through, with `model` set to
    /// the route's upstream id. Values are shared, not copied.
    pub fn upstream_body(
        &self,
        upstream_model: &str,
        reaches: impl Fn(&str) -> bool,
    ) -> JsonObject {
        let mut fields = Vec::with_capacity(self.fields.len() + 1);
        fields.push(("model".to_string(), raw_string(upstream_model)));
        fields.extend(
            self.fields
                .iter()
                .filter(|(name, _)| reaches(name))
                .map(|(name, raw)| (name.to_string(), raw.clone())),
        );
        JsonObject::from_fields(fields)
    }
}

/// What one message contributes, read without building it.
struct MessageFacts<'a> {
    role: Cow<'a, str>,
    raw: &'a RawValue,
    text_bytes: usize,
    images: u32,
    tool_calls_bytes: usize,
}

fn parse_messages(raw: Option<&RawValue>) -> Result<Vec<MessageFacts<'_>>, InvalidRequest> {
    let Some(raw) = raw else {
        return Err(invalid("`messages` is required", "messages"));
    };
    if !raw.get().starts_with('[') {
        return Err(invalid("`messages` must be an array", "messages"));
    }
    let BoundedList(items) = serde_json::from_str(raw.get()).map_err(|_| {
        invalid(
            format!("`messages` holds more than {MAX_MESSAGES} messages"),
            "messages",
        )
    })?;
    if items.is_empty() {
        return Err(invalid("`messages` must not be empty", "messages"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| message_facts(i, item))
        .collect()
}

fn message_facts(i: usize, raw: &RawValue) -> Result<MessageFacts<'_>, InvalidRequest> {
    // Parameter names are written only for an error: this runs for every message of every request.
    let param = || format!("messages[{i}]");
    let not_an_object = || {
        let param = param();
        invalid(format!("`{param}` must be an object"), &param)
    };
    if !raw.get().starts_with('{') {
        return Err(not_an_object());
    }
    let message: MessageIn<'_> = serde_json::from_str(raw.get()).map_err(|_| not_an_object())?;
    let role_param = || format!("messages[{i}].role");
    let role: Cow<'_, str> = match message.role {
        None => {
            let role_param = role_param();
            return Err(invalid(format!("`{role_param}` is required"), &role_param));
        }
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| {
            let role_param = role_param();
            invalid(format!("`{role_param}` must be a string"), &role_param)
        })?,
    };
    if !ROLES.contains(&role.as_ref()) {
        let role_param = role_param();
        return Err(invalid(
            format!(
                "`{role_param}` must be one of {}; got {role:?}",
                ROLES.join(", ")
            ),
            &role_param,
        ));
    }
    let content_param = format!("messages[{i}].content");
    let (mut text_bytes, mut images) = (0, 0);
    match message.content.filter(|c| c.get() != "null") {
        None if role == "assistant" => {}
        None => {
            return Err(invalid(
                format!("`{content_param}` is required"),
                &content_param,
            ));
        }
        Some(content) if content.get().starts_with('"') => text_bytes = string_len(content),
        Some(content) if content.get().starts_with('[') => {
            let BoundedList(parts) = serde_json::from_str(content.get())
                .map_err(|_| invalid(format!("`{content_param}` is too long"), &content_param))?;
            for (j, part) in parts.into_iter().enumerate() {
                let part_param = format!("{content_param}[{j}]");
                let refused = || {
                    invalid(
                        format!("`{part_param}` must be an object with a string `type`"),
                        &part_param,
                    )
                };
                if !part.get().starts_with('{') {
                    return Err(refused());
                }
                let part: PartIn<'_> = serde_json::from_str(part.get()).map_err(|_| refused())?;
                let Some(kind) = part.kind.filter(|k| k.get().starts_with('"')) else {
                    return Err(refused());
                };
                let kind: Cow<'_, str> = typed(kind, "", &part_param)?;
                match kind.as_ref() {
                    "image_url" | "input_image" | "image" => images += 1,
                    _ => text_bytes += part.text.map_or(0, string_len),
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                format!("`{content_param}` must be a string or an array of content parts"),
                &content_param,
            ));
        }
    }
    Ok(MessageFacts {
        role,
        raw,
        text_bytes,
        images,
        tool_calls_bytes: message.tool_calls.map_or(0, |t| t.get().len()),
    })
}

/// A request body's top-level fields, raw, or why it is not a JSON object.
pub(crate) fn top_level(bytes: &[u8]) -> Result<TopLevel<'_>, InvalidRequest> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| invalid_body(format!("the request body is not valid UTF-8: {e}")))?;
    match text.trim_start().as_bytes().first() {
        Some(b'{') => {}
        Some(_) if serde_json::from_str::<IgnoredAny>(text).is_ok() => {
            return Err(invalid_body("the request body must be a JSON object"));
        }
        _ => {}
    }
    serde_json::from_str(text).map_err(|e| match e.classify() {
        // Valid JSON the reader refused (more fields than it reads).
        serde_json::error::Category::Data => {
            invalid_body(format!("the request body is refused: {e}"))
        }
        _ => invalid_body(format!("the request body is not valid JSON: {e}")),
    })
}

/// More top-level fields than this in one body is refused: no API has a hundred, and each new
/// name is checked against those before it (a repeated name keeps its last value), so an
/// unbounded count would cost its square (200,000 padding fields took minutes of CPU).
pub const MAX_TOP_LEVEL_FIELDS: usize = 1024;

/// Deserialises a raw value into `T`, or refuses with `message` naming `param`.
pub(crate) fn typed<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    message: &str,
    param: &str,
) -> Result<T, InvalidRequest> {
    serde_json::from_str(raw.get()).map_err(|_| invalid(message, param))
}

pub(crate) fn optional<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    message: &str,
    param: &str,
) -> Result<Option<T>, InvalidRequest> {
    raw.map(|raw| typed(raw, message, param)).transpose()
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(default, borrow)]
    role: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PartIn<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
}

/// An object's `type` when it is a string.
#[derive(Deserialize)]
struct KindOnly<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
}

/// The `type`s of a list of tools (`None` for a tool without a string type).
struct ToolList<'a>(Vec<Option<Cow<'a, str>>>);

impl<'de> Deserialize<'de> for ToolList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let BoundedList(items) = BoundedList::<'de>::deserialize(deserializer)?;
        Ok(ToolList(
            items
                .into_iter()
                .map(|raw| {
                    serde_json::from_str::<KindOnly<'de>>(raw.get())
                        .ok()
                        .and_then(|k| k.kind)
                })
                .collect(),
        ))
    }
}

/// The length of a JSON string value once unescaped (0 for a value of another type), without
/// copying it unless it holds escapes.
fn string_len(raw: &RawValue) -> usize {
    serde_json::from_str::<&str>(raw.get())
        .map(str::len)
        .or_else(|_| serde_json::from_str::<String>(raw.get()).map(|s| s.len()))
        .unwrap_or(0)
}

/// An array's items as raw texts, at most `MAX_MESSAGES` of them.
struct BoundedList<'a>(Vec<&'a RawValue>);

impl<'de> Deserialize<'de> for BoundedList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = BoundedList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at most {MAX_MESSAGES} items")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    if items.len() == MAX_MESSAGES {
                        return Err(de::Error::custom("too many items"));
                    }
                    items.push(item);
                }
                Ok(BoundedList(items))
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

/// The top-level fields in the order sent, each value raw; a repeated name keeps its last value.
pub(crate) struct TopLevel<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    fields.retain(|(k, _)| *k != name);
                    if fields.len() == MAX_TOP_LEVEL_FIELDS {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_TOP_LEVEL_FIELDS} top-level fields"
                        )));
                    }
                    fields.push((name, value));
                }
                Ok(TopLevel(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(body: &str) -> Result<ChatRequest, InvalidRequest> {
        ChatRequest::parse(body.as_bytes(), &FieldPolicy::everything())
    }

    fn upstream(request: &ChatRequest) -> Value {
        request.upstream_body("m", |_| true).to_value()
    }

    #[test]
    fn a_minimal_request_defaults_to_auto_and_keeps_every_field() {
        let r = parse(r#"{"messages":[{"role":"user","content":"hi"}],"seed":7,"stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(r.model, "auto");
        assert!(r.stream && r.include_usage);
        assert_eq!(upstream(&r)["seed"], 7);
        assert_eq!(upstream(&r)["model"], "m");
        assert_eq!(upstream(&r)["messages"][0]["content"], "hi");
    }

    #[test]
    fn only_what_the_policy_lets_through_reaches_the_upstream() {
        let body = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}],
            "seed":1,"models":["paid/model"],"provider":{"order":["x"]},"pad":[0,0,0]}"#;
        let policy = FieldPolicy::new(&["provider".to_string()], []);
        let r = ChatRequest::parse(body.as_bytes(), &policy).unwrap();
        let sent = r
            .upstream_body("m", |name| policy.reaches(name, None))
            .to_value();
        assert_eq!(sent["seed"], 1);
        assert_eq!(sent["provider"], json!({"order": ["x"]}));
        assert!(sent.get("models").is_none() && sent.get("pad").is_none());
        assert!(
            r.field("pad").is_none(),
            "dropped when parsed, not kept in memory"
        );
    }

    #[test]
    fn bad_shapes_are_refused_with_the_offending_param() {
        let cases = [
            ("[1]", None),
            ("{\"messages\":[]}", Some("messages")),
            ("{}", Some("messages")),
            ("{\"messages\":\"hi\"}", Some("messages")),
            (
                "{\"model\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                Some("model"),
            ),
            (
                "{\"messages\":[{\"role\":\"boss\",\"content\":\"x\"}]}",
                Some("messages[0].role"),
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
                Some("messages[0].content"),
            ),
            (
                "{\"messages\":[{\"role\":\"user\"}]}",
                Some("messages[0].content"),
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":[0,0]}]}",
                Some("messages[0].content[0]"),
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}",
                Some("stream"),
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-1}",
                Some("max_tokens"),
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}",
                Some("temperature"),
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":[0,0,0]}",
                Some("temperature"),
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{\"include_usage\":1}}",
                Some("stream_options.include_usage"),
            ),
        ];
        for (body, param) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.param.as_deref(), param, "{body}");
        }
        assert!(parse("{not json").is_err());
        assert!(parse("").is_err());
        assert!(parse("\"x\"").unwrap_err().message.contains("JSON object"));
    }

    #[test]
    fn tools_images_and_json_mode_become_required_tags() {
        let plain = parse(r#"{"messages":[{"role":"user","content":"hi"}],"tools":[]}"#).unwrap();
        assert!(plain.required_tags().is_empty());
        let all = parse(
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],
               "tools":[{"type":"function","function":{"name":"f"}}],
               "response_format":{"type":"json_object"}}"#,
        )
        .unwrap();
        assert_eq!(all.required_tags(), vec!["tools", "vision", "json"]);
        let search = parse(r#"{"messages":[{"role":"user","content":"news"}],"tools":[{"type":"web_search_preview"}]}"#).unwrap();
        assert_eq!(search.required_tags(), vec!["web-search"]);
    }

    #[test]
    fn the_prompt_estimate_grows_with_the_text() {
        let small = parse(r#"{"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        let text = "x".repeat(4000);
        let large = parse(&format!(
            r#"{{"messages":[{{"role":"user","content":"{text}"}}]}}"#
        ))
        .unwrap();
        assert!(large.estimated_prompt_tokens() >= 1000);
        assert!(small.estimated_prompt_tokens() < 10);
    }

    #[test]
    fn a_body_padded_with_more_top_level_fields_than_the_cap_is_refused() {
        let body = |fields: usize| {
            let mut body = String::from(r#"{"messages":[{"role":"user","content":"x"}]"#);
            for i in 1..fields {
                body.push_str(&format!(r#","pad{i}":0"#));
            }
            body.push('}');
            body
        };
        assert!(parse(&body(MAX_TOP_LEVEL_FIELDS)).is_ok());
        let refused = parse(&body(MAX_TOP_LEVEL_FIELDS + 1)).unwrap_err();
        assert!(
            refused.message.contains("top-level fields"),
            "{}",
            refused.message
        );
        assert!(refused.param.is_none());
        let repeated = format!(
            r#"{{"messages":[{{"role":"user","content":"x"}}]{}}}"#,
            r#","seed":1"#.repeat(MAX_TOP_LEVEL_FIELDS * 2)
        );
        assert!(parse(&repeated).is_ok(), "a repeated name is one field");
    }

    #[test]
    fn a_repeated_field_keeps_its_last_value_and_null_means_absent() {
        let r = parse(
            r#"{"model":"a","model":"b","stream":null,"messages":[{"role":"user","content":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(r.model, "b");
        assert!(!r.stream);
    }
}
