//! `POST /v1/messages/count_tokens`: the gateway's own prompt estimate of the translated request
//! (the one routing sizes windows with), since no upstream counts for free.

use super::error::InvalidMessages;
use super::request::translate_request;
use crate::routing::ChatRequest;
use crate::routing::fields::FieldPolicy;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `{"input_tokens": n}` for a count_tokens body.
pub fn count_tokens(
    bytes: &[u8],
    tiers: &BTreeMap<String, String>,
) -> Result<Value, InvalidMessages> {
    let translated = translate_request(bytes, tiers)?;
    let chat = ChatRequest::parse(&translated.body, &FieldPolicy::everything()).map_err(|e| {
        InvalidMessages {
            message: e.message,
            param: e.param,
        }
    })?;
    Ok(json!({"input_tokens": chat.estimated_prompt_tokens()}))
}
