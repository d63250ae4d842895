//! One simulated model: its settings, its scripted behaviours and the calls it received.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::behavior::Behavior;
use super::limits::KeyLimits;

/// A chat request as the simulator received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub body: Value,
    /// Header names lower-case, values as sent (lossy for non-UTF-8).
    pub headers: Vec<(String, String)>,
    /// The request path, e.g. `/v1/chat/completions` or `/client/v4/accounts/ACC/ai/v1/chat/completions`.
    pub path: String,
    pub at: Instant,
}

/// Settings a test changes through [`ModelHandle`].
#[derive(Clone, Debug)]
struct Settings {
    answer: Option<String>,
    response_model: Option<String>,
    latency_ms: u64,
    first_token_delay_ms: u64,
    chunk_delay_ms: u64,
    refuse_prefill: bool,
    context_window: Option<u64>,
    always: Behavior,
    limits: KeyLimits,
}

/// Everything about a model the server and the handles share.
#[derive(Debug)]
pub(crate) struct ModelState {
    id: String,
    created: u64,
    listed: AtomicBool,
    calls: AtomicUsize,
    settings: Mutex<Settings>,
    script: Mutex<VecDeque<Behavior>>,
    requests: Mutex<Vec<RecordedRequest>>,
}

/// How one call is answered: the settings at the time it arrived and the behaviour it drew.
#[derive(Clone, Debug)]
pub(crate) struct CallPlan {
    pub behavior: Behavior,
    pub answer: String,
    pub response_model: String,
    pub latency: Duration,
    pub first_token_delay: Duration,
    pub chunk_delay: Duration,
    pub refuse_prefill: bool,
    pub context_window: Option<u64>,
}

impl ModelState {
    pub(crate) fn new(id: &str, created: u64) -> ModelState {
        ModelState {
            id: id.to_string(),
            created,
            listed: AtomicBool::new(true),
            calls: AtomicUsize::new(0),
            settings: Mutex::new(Settings {
                answer: None,
                response_model: None,
                latency_ms: 0,
                first_token_delay_ms: 0,
                chunk_delay_ms: 0,
                refuse_prefill: false,
                context_window: None,
                always: Behavior::Ok,
                limits: KeyLimits::default(),
            }),
            script: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn created(&self) -> u64 {
        self.created
    }

    pub(crate) fn is_listed(&self) -> bool {
        self.listed.load(Ordering::Relaxed)
    }

    pub(crate) fn unlist(&self) {
        self.listed.store(false, Ordering::Relaxed);
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// The per-key limits of this model.
    pub(crate) fn limits(&self) -> KeyLimits {
        self.settings.lock().expect("settings lock").limits
    }

    /// Counts (and, if `keep`, records) a call.
    pub(crate) fn record_call(&self, request: RecordedRequest, keep: bool) {
        if keep {
            self.requests.lock().expect("requests lock").push(request);
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    /// How the next admitted call is answered: the next scripted behaviour, else `always`, with the
    /// current settings.
    pub(crate) fn plan(&self) -> CallPlan {
        let scripted = self.script.lock().expect("script lock").pop_front();
        let s = self.settings.lock().expect("settings lock").clone();
        CallPlan {
            behavior: scripted.unwrap_or(s.always),
            answer: s.answer.unwrap_or_else(|| default_answer(&self.id)),
            response_model: s.response_model.unwrap_or_else(|| self.id.clone()),
            latency: Duration::from_millis(s.latency_ms),
            first_token_delay: Duration::from_millis(s.first_token_delay_ms),
            chunk_delay: Duration::from_millis(s.chunk_delay_ms),
            refuse_prefill: s.refuse_prefill,
            context_window: s.context_window,
        }
    }
}

/// The canonical answer of a model nobody configured.
fn default_answer(id: &str) -> String {
    format!("Hello from {id}. This is a simulated answer from the upstream.")
}

/// A test's grip on one simulated model. Cheap to clone; setters chain.
#[derive(Clone, Debug)]
pub struct ModelHandle {
    state: Arc<ModelState>,
}

impl ModelHandle {
    pub(crate) fn new(state: Arc<ModelState>) -> ModelHandle {
        ModelHandle { state }
    }

    fn set(&self, change: impl FnOnce(&mut Settings)) -> &Self {
        change(&mut self.state.settings.lock().expect("settings lock"));
        self
    }

    /// The canonical answer text.
    pub fn answer(&self, text: &str) -> &Self {
        self.set(|s| s.answer = Some(text.to_string()))
    }

    /// The `model` field of responses (default: the id).
    pub fn response_model(&self, name: &str) -> &Self {
        self.set(|s| s.response_model = Some(name.to_string()))
    }

    /// Delay before the response headers.
    pub fn latency_ms(&self, ms: u64) -> &Self {
        self.set(|s| s.latency_ms = ms)
    }

    /// Streaming: delay after the headers and the role chunk, before the first content chunk.
    pub fn first_token_delay_ms(&self, ms: u64) -> &Self {
        self.set(|s| s.first_token_delay_ms = ms)
    }

    /// Streaming: delay between content chunks.
    pub fn chunk_delay_ms(&self, ms: u64) -> &Self {
        self.set(|s| s.chunk_delay_ms = ms)
    }

    /// Answer 400 `prefill_not_supported` when the last message is an assistant message.
    pub fn refuse_prefill(&self, yes: bool) -> &Self {
        self.set(|s| s.refuse_prefill = yes)
    }

    /// Answer 400 `context_length_exceeded` when prompt tokens + `max_tokens` exceed `tokens`.
    pub fn context_window(&self, tokens: u64) -> &Self {
        self.set(|s| s.context_window = Some(tokens))
    }

    /// The behaviour of every call that has no scripted one.
    pub fn always(&self, b: Behavior) -> &Self {
        self.set(|s| s.always = b)
    }

    /// Limits per key for this model only: every key is counted separately, in addition to the
    /// key's own limits ([`super::Simulator::limit_key`]). `KeyLimits::default()` lifts them.
    pub fn limit(&self, limits: KeyLimits) -> &Self {
        self.set(|s| s.limits = limits)
    }

    /// Queues a one-shot behaviour; queued behaviours are used first, in order, one per call (a call
    /// refused by a rate limit draws none).
    pub fn then(&self, b: Behavior) -> &Self {
        self.state.script.lock().expect("script lock").push_back(b);
        self
    }

    /// Chat requests this model received.
    pub fn calls(&self) -> usize {
        self.state.calls()
    }

    /// The model's id.
    pub fn id(&self) -> &str {
        self.state.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RecordedRequest {
        RecordedRequest {
            body: Value::Null,
            headers: Vec::new(),
            path: "/v1/chat/completions".to_string(),
            at: Instant::now(),
        }
    }

    #[test]
    fn scripted_behaviours_are_used_once_in_order_before_always() {
        let state = Arc::new(ModelState::new("m", 0));
        let handle = ModelHandle::new(state.clone());
        handle
            .always(Behavior::EmptyCompletion)
            .then(Behavior::HangBeforeHeaders)
            .then(Behavior::NoDone);
        let drawn: Vec<Behavior> = (0..3)
            .map(|_| {
                state.record_call(request(), true);
                state.plan().behavior
            })
            .collect();
        assert_eq!(
            drawn,
            vec![
                Behavior::HangBeforeHeaders,
                Behavior::NoDone,
                Behavior::EmptyCompletion
            ]
        );
        assert_eq!(handle.calls(), 3);
        assert_eq!(state.requests().len(), 3);
    }

    #[test]
    fn an_unconfigured_model_answers_with_its_id() {
        let state = ModelState::new("sim-a", 0);
        state.record_call(request(), false);
        let plan = state.plan();
        assert_eq!(
            plan.answer,
            "Hello from sim-a. This is a simulated answer from the upstream."
        );
        assert_eq!(plan.response_model, "sim-a");
        assert_eq!(plan.behavior, Behavior::Ok);
        assert!(state.requests().is_empty());
    }
}
