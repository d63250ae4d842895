//! Client APIs other than chat completions, each a translation to and from a chat request.

pub mod bounded;
pub mod completions;
pub mod responses;
