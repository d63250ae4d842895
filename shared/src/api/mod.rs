//! Client APIs other than chat completions, each a translation to and from a chat request — and
//! the embeddings answer's encodings (embeddings are served natively, not through chat).

pub mod bounded;
pub mod completions;
pub mod embeddings;
pub mod responses;
