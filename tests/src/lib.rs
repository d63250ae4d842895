//! FreeRouter's end-to-end test support: the project's own upstream [`simulator`] and the
//! [`harness`] that starts the real gateway against it, and the [`bench`]marks.

pub mod bench;
pub mod harness;
pub mod simulator;
