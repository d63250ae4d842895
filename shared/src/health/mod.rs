//! Route and key health: states, cooldowns and what a failure does to them, with `now` as a parameter.

mod board;
mod state;

pub use board::{HealthBoard, HealthChange, HealthView, RouteFailure, RouteGlance};
pub use state::{HealthState, InvalidKey, KeyCooldown, RouteHealth, backoff_ms};
