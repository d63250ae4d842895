//! The OpenAI-compatible endpoints.

pub mod chat;
pub mod models;
