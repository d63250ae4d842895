//! The simulator's shared state: its models, extra listing entries, counters and the shutdown signal.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;

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
    /// Every `POST /v1/chat/completions`, valid or not.
    total_calls: AtomicUsize,
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

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
