//! The simulator's shared state: its models, extra listing entries, counters and the shutdown signal.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;

use super::limits::{Grant, KeyLimits, Limiter, Refusal};
use super::model::ModelState;

/// Cheap-to-clone handle on the state the HTTP handlers and the [`super::Simulator`] share.
#[derive(Clone, Debug)]
pub(crate) struct SimState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Models in creation order (the order of `/v1/models`).
    models: Mutex<Vec<Arc<ModelState>>>,
    /// Arbitrary entries appended to `/v1/models`.
    extra_listing: Mutex<Vec<Value>>,
    /// Every chat completions request, valid or not.
    total_calls: AtomicUsize,
    /// Chat requests answered 2xx.
    served: AtomicUsize,
    /// Rate limits and their counters; one lock for every admission keeps them exact.
    limiter: Mutex<Limiter>,
    /// Source of `chatcmpl-sim-<n>` ids.
    next_completion: AtomicU64,
    /// Whether request bodies and headers are kept for [`super::Simulator::requests`].
    recording: AtomicBool,
    /// Becomes `true` when the simulator is dropped; ends hangs and stalls.
    shutdown: watch::Sender<bool>,
}

impl SimState {
    pub(crate) fn new() -> SimState {
        SimState(Arc::new(Inner {
            models: Mutex::new(Vec::new()),
            extra_listing: Mutex::new(Vec::new()),
            total_calls: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            limiter: Mutex::new(Limiter::default()),
            next_completion: AtomicU64::new(1),
            recording: AtomicBool::new(true),
            shutdown: watch::Sender::new(false),
        }))
    }

    /// The model with this id, created (and listed) if new.
    pub(crate) fn model(&self, id: &str) -> Arc<ModelState> {
        let mut models = self.0.models.lock().expect("models lock");
        if let Some(existing) = models.iter().find(|m| m.id() == id) {
            return existing.clone();
        }
        let created = Arc::new(ModelState::new(id, unix_now()));
        models.push(created.clone());
        created
    }

    /// The model with this id, if one was created.
    pub(crate) fn find(&self, id: &str) -> Option<Arc<ModelState>> {
        let models = self.0.models.lock().expect("models lock");
        models.iter().find(|m| m.id() == id).cloned()
    }

    /// Listed models, in creation order.
    pub(crate) fn listed_models(&self) -> Vec<Arc<ModelState>> {
        let models = self.0.models.lock().expect("models lock");
        models.iter().filter(|m| m.is_listed()).cloned().collect()
    }

    pub(crate) fn extra_listing(&self) -> Vec<Value> {
        self.0.extra_listing.lock().expect("listing lock").clone()
    }

    pub(crate) fn add_listing(&self, entry: Value) {
        self.0
            .extra_listing
            .lock()
            .expect("listing lock")
            .push(entry);
    }

    pub(crate) fn count_call(&self) {
        self.0.total_calls.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn total_calls(&self) -> usize {
        self.0.total_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn count_served(&self) {
        self.0.served.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn served(&self) -> usize {
        self.0.served.load(Ordering::SeqCst)
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.0.limiter.lock().expect("limiter lock")
    }

    pub(crate) fn limit_key(&self, key: &str, limits: KeyLimits) {
        self.limiter().limit_key(key, limits);
    }

    pub(crate) fn set_day_reset_minute(&self, minute: u32) {
        self.limiter().set_day_reset_minute(minute);
    }

    pub(crate) fn set_dialect(&self, dialect: super::Dialect) {
        self.limiter().set_dialect(dialect);
    }

    pub(crate) fn limit_refusals(&self) -> usize {
        self.limiter().refusals()
    }

    /// Admits (and counts) a request from `key` to `model` with `prompt_tokens`, or refuses it.
    pub(crate) fn admit(
        &self,
        key: &str,
        model: &ModelState,
        prompt_tokens: u64,
        max_tokens: u64,
    ) -> Result<Grant, Refusal> {
        let model_limits = model.limits();
        self.limiter().admit_asking(
            key,
            model.id(),
            model_limits,
            prompt_tokens,
            max_tokens,
            unix_now_ms(),
        )
    }

    /// Counts the completion tokens of an admitted request; refreshes its headers.
    pub(crate) fn complete(&self, grant: &mut Grant, completion_tokens: u64) {
        self.limiter()
            .complete(grant, completion_tokens, unix_now_ms());
    }

    pub(crate) fn next_completion_id(&self) -> String {
        let n = self.0.next_completion.fetch_add(1, Ordering::Relaxed);
        format!("chatcmpl-sim-{n}")
    }

    pub(crate) fn recording(&self) -> bool {
        self.0.recording.load(Ordering::Relaxed)
    }

    pub(crate) fn set_recording(&self, on: bool) {
        self.0.recording.store(on, Ordering::Relaxed);
    }

    /// Signals every hanging or stalled response to end.
    pub(crate) fn shut_down(&self) {
        self.0.shutdown.send_replace(true);
    }

    /// Resolves once [`SimState::shut_down`] was called.
    pub(crate) async fn until_shutdown(&self) {
        let mut down = self.0.shutdown.subscribe();
        // An error means the sender is gone, which is a shutdown too.
        let _ = down.wait_for(|down| *down).await;
    }
}

/// Milliseconds since the Unix epoch, the clock of the rate-limit windows.
pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
