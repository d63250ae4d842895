//! Named jobs on intervals. Each job runs in its own task; cancellation is only noticed between
//! runs, so a diagnosis in progress finishes before the process exits.

use freerouter::metrics as m;
use freerouter::shutdown::CancellationToken;
use freerouter::time::{EpochMs, now_ms};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// One run of a job: a short summary on success, the error otherwise.
pub type RunOnce = Arc<dyn Fn(EpochMs) -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

pub struct Job {
    pub name: &'static str,
    /// The first run comes this long after start.
    pub first_after: Duration,
    pub every: Duration,
    pub run_once: RunOnce,
}

/// Starts every job; the handles finish once `token` is cancelled and the current runs are done.
pub fn start(jobs: Vec<Job>, token: CancellationToken) -> Vec<JoinHandle<()>> {
    jobs.into_iter()
        .map(|job| {
            let token = token.clone();
            tokio::spawn(async move {
                let mut wait = job.first_after;
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    let started = std::time::Instant::now();
                    let (outcome, summary) = match (job.run_once)(now_ms()).await {
                        Ok(summary) => ("ok", summary),
                        Err(error) => ("error", error),
                    };
                    metrics::counter!(m::MAINTAINER_RUNS_TOTAL, "job" => job.name, "outcome" => outcome).increment(1);
                    tracing::info!(job = job.name, outcome, took_ms = started.elapsed().as_millis() as u64, %summary, "job ran");
                    wait = job.every;
                }
            })
        })
        .collect()
}
