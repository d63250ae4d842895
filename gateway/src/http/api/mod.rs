//! The client API endpoints: OpenAI's chat completions and model list, Anthropic's Messages.

pub mod anthropic;
pub mod chat;
pub mod messages;
pub mod models;
pub mod pipeline;
