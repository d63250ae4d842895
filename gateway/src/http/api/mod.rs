//! The client API endpoints: OpenAI's chat completions, Responses, legacy completions and model
//! list, Anthropic's Messages.

pub mod anthropic;
pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod messages;
pub mod models;
pub mod pipeline;
pub mod responses;
mod sse;
