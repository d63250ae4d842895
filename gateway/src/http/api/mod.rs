//! The OpenAI-compatible endpoints.

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod models;
pub mod pipeline;
pub mod responses;
mod sse;
