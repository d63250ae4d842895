//! A client's embeddings request (OpenAI's `POST /v1/embeddings` body), parsed once at the
//! boundary into what routing needs — the model, the input's size, `dimensions`, the encoding the
//! client wants — with the fields that may reach an upstream kept as raw JSON text.
//!
//! Field by field: `model` picks the model (`auto` or absent: the default embedding model);
//! `input` is counted and kept as sent (see `input`); `encoding_format` (`float`, `base64`) is
//! the gateway's to honour and never sent on; `dimensions` (a positive integer) needs a route
//! tagged `dimensions` and is sent on; `user` (a string) is sent on; the adapter's own fields
//! (NVIDIA's `input_type`, `truncate`) and `routing.passthrough_fields` reach their routes;
//! anything else is dropped.

use super::input::{self, InputFacts, InputKind};
use crate::providers::body::{JsonObject, raw_string};
use crate::routing::fields::FieldPolicy;
use crate::routing::request::{InvalidRequest, invalid, optional, top_level, typed};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;

/// How the client wants its vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Arrays of numbers, as the upstream sent them.
    Float,
    /// Each vector as the base64 of its little-endian float32s (what OpenAI's SDKs ask for).
    Base64,
}

/// A validated embeddings request.
#[derive(Clone, Debug)]
pub struct EmbeddingsRequest {
    /// What the client asked for (`auto` when absent or empty).
    pub model: String,
    pub encoding: Encoding,
    /// A shorter vector, for models that take it.
    pub dimensions: Option<u64>,
    input: InputFacts,
    /// The fields that may reach an upstream, raw; `model` and `encoding_format` left out.
    fields: JsonObject,
}

impl EmbeddingsRequest {
    /// Parses a request body; fields `policy` lets no upstream see are dropped here.
    pub fn parse(bytes: &[u8], policy: &FieldPolicy) -> Result<Self, InvalidRequest> {
        let fields = top_level(bytes)?.0;
        let field = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .filter(|v| v.get() != "null")
        };
        let model = match field("model") {
            None => "auto".to_string(),
            Some(raw) => {
                let model: Cow<'_, str> = typed(raw, "`model` must be a string", "model")?;
                match model.trim() {
                    "" => "auto".to_string(),
                    name => name.to_string(),
                }
            }
        };
        let Some(raw_input) = field("input") else {
            return Err(invalid("`input` is required", "input"));
        };
        let input = input::read(raw_input.get())?;
        let encoding = match optional::<Cow<'_, str>>(
            field("encoding_format"),
            "`encoding_format` must be \"float\" or \"base64\"",
            "encoding_format",
        )?
        .as_deref()
        {
            None | Some("float") => Encoding::Float,
            Some("base64") => Encoding::Base64,
            Some(other) => {
                return Err(invalid(
                    format!("`encoding_format` must be \"float\" or \"base64\"; got {other:?}"),
                    "encoding_format",
                ));
            }
        };
        let dimensions = optional::<u64>(
            field("dimensions"),
            "`dimensions` must be a positive integer",
            "dimensions",
        )?;
        if dimensions == Some(0) {
            return Err(invalid(
                "`dimensions` must be a positive integer",
                "dimensions",
            ));
        }
        optional::<Cow<'_, str>>(field("user"), "`user` must be a string", "user")?;
        let kept = fields
            .iter()
            .filter(|(name, _)| name != "model" && name != "encoding_format")
            .filter(|(name, _)| policy.keeps_embedding(name))
            .map(|(name, raw)| (name.to_string(), Arc::<RawValue>::from((*raw).to_owned())))
            .collect();
        Ok(Self {
            model,
            encoding,
            dimensions,
            input,
            fields: JsonObject::from_fields(kept),
        })
    }

    /// How many vectors the answer must hold.
    pub fn inputs(&self) -> usize {
        self.input.inputs
    }

    /// Text or token ids.
    pub fn input_kind(&self) -> InputKind {
        self.input.kind
    }

    /// The tokens one attempt reserves: the whole input's estimate (an embedding has no output).
    pub fn estimated_tokens(&self) -> u64 {
        self.input.tokens
    }

    /// The largest single input's estimate.
    pub fn largest_input_tokens(&self) -> u64 {
        self.input.largest
    }

    /// The body for one upstream: the kept fields that `reaches` lets through, with `model` set to
    /// the route's upstream id. Values are shared, not copied.
    pub fn upstream_body(
        &self,
        upstream_model: &str,
        reaches: impl Fn(&str) -> bool,
    ) -> JsonObject {
        let mut fields = Vec::with_capacity(self.fields.len() + 1);
        fields.push(("model".to_string(), raw_string(upstream_model)));
        fields.extend(
            self.fields
                .iter()
                .filter(|(name, _)| reaches(name))
                .map(|(name, raw)| (name.to_string(), raw.clone())),
        );
        JsonObject::from_fields(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::adapter_for;
    use serde_json::json;

    fn parse(body: &str) -> Result<EmbeddingsRequest, InvalidRequest> {
        let nvidia = adapter_for("nvidia").unwrap();
        EmbeddingsRequest::parse(body.as_bytes(), &FieldPolicy::new(&[], [nvidia.as_ref()]))
    }

    #[test]
    fn a_minimal_request_defaults_to_auto_and_floats() {
        let r = parse(r#"{"input":"hello"}"#).unwrap();
        assert_eq!(r.model, "auto");
        assert_eq!(r.encoding, Encoding::Float);
        assert_eq!((r.inputs(), r.estimated_tokens()), (1, 2));
        assert_eq!(
            r.upstream_body("up-1", |_| true).to_value(),
            json!({"model": "up-1", "input": "hello"})
        );
    }

    #[test]
    fn what_the_upstream_gets_is_the_allow_list_without_model_or_encoding() {
        let r = parse(
            r#"{"model":" bge-m3 ","input":[[1,2],[3]],"encoding_format":"base64","dimensions":256,
                "user":"u-1","input_type":"passage","provider":{"order":["paid"]},"pad":[0,0]}"#,
        )
        .unwrap();
        assert_eq!(r.model, "bge-m3");
        assert_eq!(r.encoding, Encoding::Base64);
        assert_eq!(r.dimensions, Some(256));
        assert_eq!(r.input_kind(), InputKind::Tokens);
        assert_eq!(
            (r.inputs(), r.estimated_tokens(), r.largest_input_tokens()),
            (2, 3, 2)
        );
        assert_eq!(
            r.upstream_body("m", |_| true).to_value(),
            json!({"model": "m", "input": [[1, 2], [3]], "dimensions": 256, "user": "u-1",
                   "input_type": "passage"})
        );
        let plain = r.upstream_body("m", |name| name != "input_type").to_value();
        assert!(plain.get("input_type").is_none());
    }

    #[test]
    fn bad_fields_are_refused_naming_them() {
        let cases = [
            ("[1]", None),
            ("{}", Some("input")),
            (r#"{"input":null}"#, Some("input")),
            (r#"{"input":7}"#, Some("input")),
            (r#"{"input":["a",[1]]}"#, Some("input[1]")),
            (r#"{"input":"a","model":5}"#, Some("model")),
            (
                r#"{"input":"a","encoding_format":"hex"}"#,
                Some("encoding_format"),
            ),
            (
                r#"{"input":"a","encoding_format":1}"#,
                Some("encoding_format"),
            ),
            (r#"{"input":"a","dimensions":0}"#, Some("dimensions")),
            (r#"{"input":"a","dimensions":-3}"#, Some("dimensions")),
            (r#"{"input":"a","dimensions":"256"}"#, Some("dimensions")),
            (r#"{"input":"a","user":{"id":1}}"#, Some("user")),
        ];
        for (body, param) in cases {
            let error = parse(body).unwrap_err();
            assert_eq!(error.param.as_deref(), param, "{body}");
        }
        assert!(parse("{not json").unwrap_err().param.is_none());
    }
}
