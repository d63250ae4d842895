//! Limits at the door: the upstream concurrency limit with its wait queue, the per-client rate
//! limit, and the throttle on failed admin-credential checks.

mod auth_failures;
mod per_client;
mod queue;

pub use auth_failures::AuthThrottle;
pub use per_client::{ClientId, ClientLimiter};
pub use queue::{ConcurrencyLimiter, QueueRefusal, Slot};

use crate::state::AppState;
use freerouter::shutdown::CancellationToken;
use freerouter::time::now_ms;
use std::time::Duration;

/// How often the per-client and failed-auth state drops clients it no longer needs to remember.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// Prunes the limiters' per-client state on a timer, so it holds only recent clients.
pub async fn prune(state: AppState, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
        if let Some(limiter) = &state.client_limiter {
            limiter.prune();
        }
        state.auth_throttle.prune(now_ms());
    }
}
