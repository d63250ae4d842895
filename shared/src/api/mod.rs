//! The translating faces above routing: each client API besides chat completions (Anthropic's
//! Messages, OpenAI's Responses, legacy completions) is translated into a chat request for the
//! engine, and the engine's answers (whole or streamed) back into that API's shapes; and the
//! embeddings answer's encodings (embeddings are served natively, not through chat). Routing never
//! learns these shapes; these modules never route.

pub mod anthropic;
pub mod bounded;
pub mod completions;
pub mod embeddings;
pub mod responses;
