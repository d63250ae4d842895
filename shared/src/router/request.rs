//! A request to the router: an OpenAI-shaped JSON body, and the choices the gateway reads from
//! headers (strictness, a session, priority, excluded route properties).

use serde_json::{Value, json};

/// An OpenAI-shaped request body (chat completions or embeddings) with routing options.
///
/// A `serde_json::Value` converts into one, so `router.chat(json!({...}))` works as well.
#[derive(Clone, Debug)]
pub struct Request {
    /// The body as OpenAI's API takes it (`model` defaults to `auto`).
    pub body: Value,
    /// No model but the one named (the gateway's `X-FreeRouter-Strict: true`).
    pub strict: bool,
    /// Keeps a conversation on the route that served it (the gateway's `X-Session-Id`).
    pub session_id: Option<String>,
    /// Low priority (the gateway's `X-FreeRouter-Priority: low`): kept off routes whose daily
    /// window is below `routing.low_priority_reserve`.
    pub low_priority: bool,
    /// Route properties this request may not be served by (the gateway's
    /// `X-FreeRouter-Exclude`, e.g. `trains-on-prompts`), besides `routing.exclude`.
    pub exclude: Vec<String>,
}

impl Request {
    /// A request with this body.
    pub fn new(body: Value) -> Self {
        Self {
            body,
            strict: false,
            session_id: None,
            low_priority: false,
            exclude: Vec::new(),
        }
    }

    /// One user message to `auto`: the best available model.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(json!({
            "model": "auto",
            "messages": [{"role": "user", "content": text.into()}],
        }))
    }

    /// Embeddings of `input` (a string or an array of strings) by the default embedding model.
    pub fn embed(input: impl Into<Value>) -> Self {
        Self::new(json!({"model": "auto", "input": input.into()}))
    }

    /// Sets the body's `model`: `auto`, `auto-fast`, `auto-balanced`, or a route id, upstream
    /// model id, display name or alias (tried first, the ranked order after it unless strict).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        if let Some(object) = self.body.as_object_mut() {
            object.insert("model".into(), Value::String(model.into()));
        }
        self
    }

    /// Only the model named may answer.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// A batch job's request: it leaves the scarce end of each daily window to others.
    pub fn low_priority(mut self) -> Self {
        self.low_priority = true;
        self
    }

    /// Keeps routes with this property (e.g. `trains-on-prompts`) out of this request.
    pub fn exclude(mut self, property: impl Into<String>) -> Self {
        self.exclude.push(property.into());
        self
    }

    /// Keeps this conversation on one route while it stays eligible.
    pub fn session(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }
}

impl From<Value> for Request {
    fn from(body: Value) -> Self {
        Self::new(body)
    }
}
