//! The maintainer's jobs, each a `run_once(now)` over the shared maintenance context.

use crate::scheduler::{Job, RunOnce};
use freerouter::maintenance::Maintenance;
use std::sync::Arc;
use std::time::Duration;

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Diagnosis, key re-check and retention, on their configured intervals.
pub fn all(maintenance: Arc<Maintenance>) -> Vec<Job> {
    let settings = maintenance.settings.clone();
    let diagnosis: RunOnce = {
        let m = maintenance.clone();
        Arc::new(move |now| {
            let m = m.clone();
            Box::pin(async move {
                let report = m.diagnose(now).await.map_err(|e| e.to_string())?;
                serde_json::to_string(&report).map_err(|e| e.to_string())
            })
        })
    };
    let keys: RunOnce = {
        let m = maintenance.clone();
        Arc::new(move |_| {
            let m = m.clone();
            Box::pin(async move {
                let restored = m.recheck_keys().await.map_err(|e| e.to_string())?;
                Ok(format!("{restored} keys restored"))
            })
        })
    };
    let retention: RunOnce = {
        let m = maintenance.clone();
        Arc::new(move |now| {
            let m = m.clone();
            Box::pin(async move {
                let trimmed = m.retain(now).await.map_err(|e| e.to_string())?;
                Ok(format!("{trimmed:?}"))
            })
        })
    };
    vec![
        Job {
            name: "diagnosis",
            first_after: seconds(settings.first_run_delay_s),
            every: seconds(settings.diagnosis_interval_s),
            run_once: diagnosis,
        },
        Job {
            name: "key_recheck",
            first_after: seconds(settings.first_run_delay_s),
            every: seconds(settings.key_recheck_interval_s),
            run_once: keys,
        },
        Job {
            name: "retention",
            first_after: seconds(settings.first_run_delay_s) + Duration::from_secs(60),
            every: seconds(settings.retention_interval_s),
            run_once: retention,
        },
    ]
}
