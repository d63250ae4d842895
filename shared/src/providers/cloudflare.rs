//! Cloudflare Workers AI: the account id is part of the path (chat, embeddings, models), and an
//! assistant message with `content: null` is refused (it must be a string).

use super::ProviderAdapter;
use super::body::JsonObject;
use crate::catalog::Provider;
use serde_json::Value;

pub struct Cloudflare;

fn with_account(provider: &Provider, url: String) -> String {
    match provider.params.get("account_id") {
        Some(account) => url.replace("{account_id}", account),
        None => url,
    }
}

impl ProviderAdapter for Cloudflare {
    fn name(&self) -> &'static str {
        "cloudflare"
    }

    fn chat_url(&self, provider: &Provider) -> String {
        with_account(provider, format!("{}/chat/completions", provider.base_url))
    }

    fn models_url(&self, provider: &Provider) -> String {
        with_account(provider, format!("{}/models", provider.base_url))
    }

    fn embeddings_url(&self, provider: &Provider) -> String {
        with_account(provider, format!("{}/embeddings", provider.base_url))
    }

    fn prepare_body(&self, body: &mut JsonObject) {
        // Most bodies have no `null` at all: only those are parsed and rewritten.
        if !body
            .get("messages")
            .is_some_and(|m| m.get().contains("null"))
        {
            return;
        }
        body.edit(&["messages"], |body| {
            if let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) {
                for message in messages {
                    if message.get("content").is_some_and(Value::is_null) {
                        message["content"] = Value::String(String::new());
                    }
                }
            }
        });
    }
}
