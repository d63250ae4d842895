//! FreeRouter's end-to-end test support: the project's own upstream [`simulator`] and the
//! [`harness`] that starts the real gateway against it, [`raw_http`] for what no well-behaved
//! client sends, and the [`bench`]marks.

pub mod bench;
pub mod harness;
pub mod raw_http;
pub mod simulator;
