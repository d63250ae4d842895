//! OpenAI's embeddings answer in the encoding the client asked for. Every upstream is asked for
//! floats (`encoding_format` never reaches one: not every free tier packs vectors), and the answer
//! goes to the client as the upstream sent it — unless the client asked for `base64` (what
//! OpenAI's SDKs ask for by default): then each `data[i].embedding` becomes the base64 of its
//! numbers as little-endian float32s, as OpenAI sends it, and every other field stays as sent.
//! A vector an upstream already sent as a string is left as it is.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value};

/// Why an answer could not be packed (it passed the engine's checks, so this means an upstream
/// sent numbers that are not numbers).
#[derive(Debug, thiserror::Error)]
#[error("the upstream's embeddings answer could not be packed as base64: {0}")]
pub struct PackError(String);

/// The answer with its vectors packed as base64.
pub fn pack_base64(body: &[u8]) -> Result<Bytes, PackError> {
    let failed = |e: serde_json::Error| PackError(e.to_string());
    let mut answer: Map<String, Value> = serde_json::from_slice(body).map_err(failed)?;
    let Some(Value::Array(items)) = answer.get_mut("data") else {
        return Err(PackError("no `data` array".into()));
    };
    for item in items.iter_mut() {
        let Some(embedding) = item.get_mut("embedding") else {
            continue;
        };
        if let Value::Array(numbers) = embedding {
            let mut packed = Vec::with_capacity(numbers.len() * 4);
            for number in numbers.iter() {
                let value = number
                    .as_f64()
                    .ok_or_else(|| PackError(format!("{number} is not a number")))?;
                packed.extend_from_slice(&(value as f32).to_le_bytes());
            }
            *embedding = Value::String(STANDARD.encode(packed));
        }
    }
    serde_json::to_vec(&answer).map(Bytes::from).map_err(failed)
}

/// Reads a packed vector back (tests, and clients of this crate).
pub fn unpack_base64(packed: &str) -> Option<Vec<f32>> {
    let bytes = STANDARD.decode(packed).ok()?;
    (bytes.len() % 4 == 0).then(|| {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vectors_are_packed_as_little_endian_float32_and_everything_else_kept() {
        let body = json!({"object": "list", "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2},
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0, 0.1]},
                     {"object": "embedding", "index": 1, "embedding": "AACAPw=="}]});
        let packed: Value =
            serde_json::from_slice(&pack_base64(body.to_string().as_bytes()).unwrap()).unwrap();
        let first = packed["data"][0]["embedding"].as_str().unwrap();
        assert_eq!(unpack_base64(first).unwrap(), vec![0.5f32, -1.0, 0.1]);
        assert_eq!(
            first,
            STANDARD.encode(
                [0.5f32, -1.0, 0.1]
                    .iter()
                    .flat_map(|f| f.to_le_bytes())
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(
            packed["data"][1]["embedding"], "AACAPw==",
            "already packed: kept"
        );
        assert_eq!(unpack_base64("AACAPw==").unwrap(), vec![1.0f32]);
        assert_eq!(packed["usage"], body["usage"]);
        assert_eq!(packed["model"], "m");
        assert_eq!(packed["data"][1]["index"], 1);
    }

    #[test]
    fn an_answer_that_is_not_one_is_refused() {
        assert!(pack_base64(b"[1]").is_err());
        assert!(pack_base64(br#"{"data":{}}"#).is_err());
        assert!(pack_base64(br#"{"data":[{"embedding":[1,"x"]}]}"#).is_err());
        assert!(unpack_base64("AAA").is_none());
    }
}
