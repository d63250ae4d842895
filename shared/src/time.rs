//! Wall-clock time as plain milliseconds, read once at the edge and passed into the logic.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type EpochMs = i64;

/// The current wall-clock time; call it at the boundary and pass the value down.
pub fn now_ms() -> EpochMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as EpochMs)
        .unwrap_or(0)
}
