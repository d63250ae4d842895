//! The maintainer's jobs: endpoint diagnosis (with the supervisor pricing check), auto-maintenance,
//! re-checking refused keys, and retention. Each is `run_once(now)`; the maintainer binary schedules them.

pub mod apply;
pub mod classify;
mod diagnosis;
mod facts;
mod keys;
mod retention;
pub mod supervisor;

pub use diagnosis::DiagnosisReport;

use crate::catalog::Provider;
use crate::config::MaintainerSettings;
use crate::store::Store;
use std::collections::BTreeMap;

/// What the jobs share.
pub struct Maintenance {
    pub store: Store,
    /// Providers as configured (keys from the environment).
    pub providers: BTreeMap<String, Provider>,
    pub http: crate::providers::HttpClient,
    pub settings: MaintainerSettings,
}
