//! Judging a listed model from its listing entry: does it look like a chat model, is it provably free?

use serde_json::Value;

/// Words that mark a model as something other than a chat model.
const NOT_CHAT: &[&str] = &[
    "embed",
    "embedding",
    "whisper",
    "tts",
    "speech",
    "audio",
    "transcri",
    "dall-e",
    "image-gen",
    "imagen",
    "stable-diffusion",
    "sdxl",
    "flux",
    "moderation",
    "guard",
    "rerank",
    "clip",
    "ocr",
    "vision-encoder",
    "text-to-image",
    "lyria",
    "veo",
];

/// Whether the id (and the listing's modalities, when it gives them) looks like a chat model.
pub fn looks_like_chat_model(id: &str, entry: &Value) -> bool {
    let lower = id.to_ascii_lowercase();
    if NOT_CHAT.iter().any(|word| lower.contains(word)) {
        return false;
    }
    let outputs = entry
        .pointer("/architecture/output_modalities")
        .and_then(Value::as_array);
    if let Some(outputs) = outputs {
        return outputs.iter().any(|m| m == "text");
    }
    true
}

/// What the listing proves about price: `Some(true)` free, `Some(false)` priced, `None` unknown.
/// OpenRouter: an id ending `:free`, or prompt and completion prices of zero; others: a structured
/// zero price when the listing carries one.
pub fn listed_price_is_free(id: &str, entry: &Value) -> Option<bool> {
    if id.ends_with(":free") {
        return Some(true);
    }
    let pricing = entry.get("pricing")?;
    let price = |field: &str| -> Option<f64> {
        match pricing.get(field)? {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    };
    let (prompt, completion) = (price("prompt")?, price("completion")?);
    Some(prompt == 0.0 && completion == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedding_audio_and_image_models_are_not_chat_models() {
        for id in [
            "text-embedding-3-small",
            "whisper-large-v3",
            "dall-e-3",
            "llama-guard-4",
            "bge-reranker",
        ] {
            assert!(!looks_like_chat_model(id, &json!({})), "{id}");
        }
        assert!(looks_like_chat_model(
            "meta-llama/llama-4-scout:free",
            &json!({})
        ));
        assert!(!looks_like_chat_model(
            "x/picture",
            &json!({"architecture": {"output_modalities": ["image"]}})
        ));
    }

    #[test]
    fn free_is_proved_by_the_suffix_or_a_zero_price_and_unknown_otherwise() {
        assert_eq!(listed_price_is_free("a/b:free", &json!({})), Some(true));
        assert_eq!(
            listed_price_is_free(
                "a/b",
                &json!({"pricing": {"prompt": "0", "completion": "0"}})
            ),
            Some(true)
        );
        assert_eq!(
            listed_price_is_free(
                "a/b",
                &json!({"pricing": {"prompt": "0.000001", "completion": "0"}})
            ),
            Some(false)
        );
        assert_eq!(listed_price_is_free("a/b", &json!({"id": "a/b"})), None);
    }
}
