//! Cloudflare Workers AI: the account id is part of the path, and an assistant message with
//! `content: null` is refused (it must be a string).

use super::ProviderAdapter;
use crate::catalog::Provider;
use serde_json::{Map, Value};

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

    fn prepare_body(&self, body: &mut Map<String, Value>) {
        if let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) {
            for message in messages {
                if message.get("content").is_some_and(Value::is_null) {
                    message["content"] = Value::String(String::new());
                }
            }
        }
    }
}
