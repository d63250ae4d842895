//! The routing engine of DESIGN.md §6: candidates by rank, the failure table, fallback, and
//! streaming with a commit point and mid-stream rescue; `embeddings` serves `/v1/embeddings` on
//! the same attempts, quota and failure table, within one embedding model.

mod attempts;
pub mod chunk;
pub mod embeddings;
mod engine;
mod error;
pub mod fields;
pub mod modes;
pub mod output;
pub mod plan;
pub mod policy;
pub mod priority;
mod request;
pub mod sessions;
pub mod stats;
mod stream;
mod trail;

pub use engine::{
    Completion, Engine, RequestRecord, RouteRequest, Served, error_status, record_request,
};
pub use error::{Refill, RoutingError, utc_moment, utc_time};
pub use request::{ChatRequest, InvalidRequest};
pub use stream::CommittedStream;
pub use trail::{AttemptRecord, Trail};
