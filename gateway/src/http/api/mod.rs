//! The OpenAI-compatible endpoints.

pub mod chat;
pub mod models;
pub mod pipeline;
