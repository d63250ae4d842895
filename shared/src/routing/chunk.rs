//! Reading one streamed chunk or one whole completion: see [`crate::providers::answer`], where the
//! HTTP flow reads them too.

pub use crate::providers::answer::{ChunkInfo, CompletionInfo, Usage, text_of};
