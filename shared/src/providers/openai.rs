//! The plain OpenAI-compatible adapter: for providers (and users' own endpoints) without quirks.

use super::ProviderAdapter;

/// Cerebras, NVIDIA NIM, GitHub Models, SambaNova, Hugging Face, local Ollama, custom providers.
pub struct OpenAiCompatible;

impl ProviderAdapter for OpenAiCompatible {
    fn name(&self) -> &'static str {
        "openai"
    }
}
