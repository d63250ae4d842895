//! The client's chat request, parsed and validated at the boundary; everything else passes through.

use serde_json::{Map, Value};

/// Why a request body was refused (400 `invalid_request`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    pub message: String,
    pub param: Option<String>,
}

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.to_string()),
    }
}

/// More messages than this in one request is refused.
pub const MAX_MESSAGES: usize = 10_000;

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
    /// The whole body as sent, passed through untouched but for `model`.
    pub body: Map<String, Value>,
}

impl ChatRequest {
    /// Parses a request body.
    pub fn parse(bytes: &[u8]) -> Result<Self, InvalidRequest> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| InvalidRequest {
            message: format!("the request body is not valid JSON: {e}"),
            param: None,
        })?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, InvalidRequest> {
        let Value::Object(body) = value else {
            return Err(InvalidRequest {
                message: "the request body must be a JSON object".into(),
                param: None,
            });
        };
        let model = match body.get("model") {
            None | Some(Value::Null) => "auto".to_string(),
            Some(Value::String(s)) if s.trim().is_empty() => "auto".to_string(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => return Err(invalid("`model` must be a string", "model")),
        };
        let messages = match body.get("messages") {
            Some(Value::Array(m)) if m.is_empty() => {
                return Err(invalid("`messages` must not be empty", "messages"));
            }
            Some(Value::Array(m)) => m,
            None | Some(Value::Null) => return Err(invalid("`messages` is required", "messages")),
            Some(_) => return Err(invalid("`messages` must be an array", "messages")),
        };
        if messages.len() > MAX_MESSAGES {
            return Err(invalid(
                format!("`messages` holds more than {MAX_MESSAGES} messages"),
                "messages",
            ));
        }
        for (i, message) in messages.iter().enumerate() {
            validate_message(i, message)?;
        }
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("`stream` must be a boolean", "stream")),
        };
        let include_usage = match body.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(o)) => match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(invalid(
                        "`stream_options.include_usage` must be a boolean",
                        "stream_options.include_usage",
                    ));
                }
            },
            Some(_) => {
                return Err(invalid(
                    "`stream_options` must be an object",
                    "stream_options",
                ));
            }
        };
        let mut max_tokens = None;
        for field in ["max_tokens", "max_completion_tokens"] {
            match body.get(field) {
                None | Some(Value::Null) => {}
                Some(v) => match v.as_u64() {
                    // Capped so that sums with it cannot overflow; the body keeps the client's value.
                    Some(n) => {
                        let n = n.min(u64::from(u32::MAX));
                        max_tokens = Some(max_tokens.map_or(n, |m: u64| m.max(n)))
                    }
                    None => {
                        return Err(invalid(
                            format!("`{field}` must be a non-negative integer"),
                            field,
                        ));
                    }
                },
            }
        }
        for field in [
            "temperature",
            "top_p",
            "presence_penalty",
            "frequency_penalty",
        ] {
            if let Some(v) = body.get(field)
                && !(v.is_null() || v.is_number())
            {
                return Err(invalid(format!("`{field}` must be a number"), field));
            }
        }
        if let Some(v) = body.get("n")
            && !(v.is_null() || v.is_u64())
        {
            return Err(invalid("`n` must be a positive integer", "n"));
        }
        if let Some(v) = body.get("tools")
            && !(v.is_null() || v.is_array())
        {
            return Err(invalid("`tools` must be an array", "tools"));
        }
        Ok(Self {
            model,
            stream,
            include_usage,
            max_tokens,
            body,
        })
    }

    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// A rough prompt size: characters / 4 plus a few tokens a message, images at a flat rate.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        let mut chars = 0usize;
        let mut tokens = 0u64;
        for message in self.messages() {
            tokens += 4;
            match message.get("content") {
                Some(Value::String(s)) => chars += s.len(),
                Some(Value::Array(parts)) => {
                    for part in parts {
                        match part.get("type").and_then(Value::as_str) {
                            Some("image_url") | Some("input_image") => tokens += 800,
                            _ => {
                                chars +=
                                    part.get("text").and_then(Value::as_str).map_or(0, str::len)
                            }
                        }
                    }
                }
                _ => {}
            }
            if let Some(calls) = message.get("tool_calls") {
                chars += calls.to_string().len();
            }
        }
        if let Some(tools) = self.body.get("tools") {
            chars += tools.to_string().len();
        }
        tokens + (chars as u64).div_ceil(4)
    }

    /// The capability tags a route needs to serve this request: `tools`, `vision`, `json`, and
    /// `web-search` when the caller sent a web-search tool of its own.
    pub fn required_tags(&self) -> Vec<&'static str> {
        let mut tags = Vec::new();
        let tools = ["tools", "functions"]
            .iter()
            .filter_map(|f| self.body.get(*f).and_then(Value::as_array))
            .flatten();
        let (mut functions, mut searches) = (false, false);
        for tool in tools {
            match tool.get("type").and_then(Value::as_str) {
                Some("web_search_preview" | "web_search") => searches = true,
                _ => functions = true,
            }
        }
        if functions {
            tags.push("tools");
        }
        if searches {
            tags.push("web-search");
        }
        let has_image = self.messages().iter().any(|m| {
            m.get("content")
                .and_then(Value::as_array)
                .is_some_and(|parts| {
                    parts.iter().any(|p| {
                        matches!(
                            p.get("type").and_then(Value::as_str),
                            Some("image_url" | "input_image" | "image")
                        )
                    })
                })
        });
        if has_image {
            tags.push("vision");
        }
        let json_mode = matches!(
            self.body
                .get("response_format")
                .and_then(|f| f.get("type"))
                .and_then(Value::as_str),
            Some("json_object" | "json_schema")
        );
        if json_mode {
            tags.push("json");
        }
        tags
    }

    /// The body for one upstream: the client's, with `model` set to the route's upstream id.
    pub fn upstream_body(&self, upstream_model: &str) -> Value {
        let mut body = self.body.clone();
        body.insert("model".into(), Value::String(upstream_model.to_string()));
        Value::Object(body)
    }
}

fn validate_message(i: usize, message: &Value) -> Result<(), InvalidRequest> {
    let param = format!("messages[{i}]");
    let Value::Object(m) = message else {
        return Err(invalid(format!("`{param}` must be an object"), &param));
    };
    let role = match m.get("role") {
        Some(Value::String(r)) => r.as_str(),
        Some(_) => {
            return Err(invalid(
                format!("`{param}.role` must be a string"),
                &format!("{param}.role"),
            ));
        }
        None => {
            return Err(invalid(
                format!("`{param}.role` is required"),
                &format!("{param}.role"),
            ));
        }
    };
    if !ROLES.contains(&role) {
        return Err(invalid(
            format!(
                "`{param}.role` must be one of {}; got {role:?}",
                ROLES.join(", ")
            ),
            &format!("{param}.role"),
        ));
    }
    match m.get("content") {
        Some(Value::String(_)) => {}
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                if !part.get("type").is_some_and(Value::is_string) {
                    return Err(invalid(
                        format!("`{param}.content[{j}]` must be an object with a string `type`"),
                        &format!("{param}.content[{j}]"),
                    ));
                }
            }
        }
        None | Some(Value::Null) if role == "assistant" => {}
        None | Some(Value::Null) => {
            return Err(invalid(
                format!("`{param}.content` is required"),
                &format!("{param}.content"),
            ));
        }
        Some(_) => {
            return Err(invalid(
                format!("`{param}.content` must be a string or an array of content parts"),
                &format!("{param}.content"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ChatRequest, InvalidRequest> {
        ChatRequest::parse(body.as_bytes())
    }

    #[test]
    fn a_minimal_request_defaults_to_auto_and_keeps_every_field() {
        let r = parse(r#"{"messages":[{"role":"user","content":"hi"}],"seed":7,"stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(r.model, "auto");
        assert!(r.stream && r.include_usage);
        assert_eq!(r.upstream_body("m")["seed"], 7);
        assert_eq!(r.upstream_body("m")["model"], "m");
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
        ];
        for (body, param) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.param.as_deref(), param, "{body}");
        }
        assert!(parse("{not json").is_err());
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
}
