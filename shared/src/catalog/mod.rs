//! The catalog: providers (with their keys) and ranked routes, and the live snapshot the hot path reads.

pub mod builtin;
mod check;
pub mod data_use;
pub mod live;
mod provider;
mod route;
mod snapshot;

pub use check::{check_settings, load_settings};
pub use provider::{ApiKey, Provider, parse_day_reset, resolve_providers};
pub use route::{Origin, Route, RouteSeed, UNDECLARED_MAX_OUTPUT, route_id};
pub use snapshot::{CatalogSnapshot, ModelMatch, is_auto_mode};

/// The capability tags routes carry and requests can need.
pub const KNOWN_TAGS: &[&str] = &[
    "tools",
    "vision",
    "json",
    "web-search",
    "reasoning",
    "long-context",
    "coding",
    "no-prefill",
    "embeddings",
    "dimensions",
];

/// The tag of routes that serve `/v1/embeddings` (and never chat): embedding models.
pub const EMBEDDINGS_TAG: &str = "embeddings";

/// The tag of embedding routes whose model takes `dimensions` (a shorter vector on request).
pub const DIMENSIONS_TAG: &str = "dimensions";
