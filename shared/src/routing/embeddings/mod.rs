//! `/v1/embeddings` on the engine: the request parsed and bounded at the boundary (`request`,
//! `input`), the one embedding model it is served by (`model`: every provider serving that same
//! model, never another model), the attempt loop with its quota reservations and failure table
//! (`engine`), and the reasons it can end without vectors (`error`). Chat requests never reach an
//! embeddings route (`routing::plan` skips them), and embeddings requests reach nothing else.

mod engine;
mod error;
mod input;
mod model;
mod request;
#[cfg(test)]
mod tests;

pub use engine::{ENDPOINT, EmbedRequest, Embedded};
pub use error::EmbeddingsError;
pub use input::{InputKind, MAX_INPUTS, MAX_TOKENS_PER_INPUT};
pub use model::{EmbeddingModel, candidates, is_embeddings, resolve, same_model};
pub use request::{EmbeddingsRequest, Encoding};
