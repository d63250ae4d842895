//! The operations adminctl and the admin API share: one library function per operation, so the
//! shell and HTTP faces always do the same thing.

pub mod capacity;
pub mod catalog;
pub mod providers;
pub mod stats;

use crate::maintenance::apply::ApplyError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("no route {0:?} in the catalog (see `adminctl models list`)")]
    UnknownRoute(String),
    #[error("{0}")]
    Apply(#[from] ApplyError),
    #[error("no pending suggestion {0}")]
    UnknownSuggestion(i64),
}
