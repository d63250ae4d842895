//! An embeddings request's `input`, read by a visitor that counts as it goes: a string, an array
//! of strings, an array of token ids (one input), or an array of token arrays. Nothing of it is
//! stored — a padded input costs its bytes, never a tree — and a bad one is refused naming the
//! item (`input[3]`) before any upstream sees it.

use crate::routing::request::{InvalidRequest, invalid};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use std::fmt;

/// More inputs than this in one request is refused (OpenAI's own cap).
pub const MAX_INPUTS: usize = 2048;

/// More token ids than this in one token array is refused (the body's size bounds it too).
pub const MAX_TOKENS_PER_INPUT: usize = 65_536;

/// Text, or token ids (meaningful only to the model whose tokenizer made them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Text,
    Tokens,
}

/// What an `input` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputFacts {
    pub kind: InputKind,
    /// Vectors the answer must hold.
    pub inputs: usize,
    /// The estimate the quota is reserved for: a token per 4 bytes of text (at least one per
    /// input), the length of a token array.
    pub tokens: u64,
    /// The largest one input's estimate (each input must fit the model's window on its own).
    pub largest: u64,
}

const SHAPE: &str = "`input` must be a string, an array of strings, an array of token ids \
                     (non-negative integers), or an array of such arrays";

/// Reads a raw `input` value.
pub fn read(raw: &str) -> Result<InputFacts, InvalidRequest> {
    let mut problem = None;
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    let facts = Input {
        problem: &mut problem,
    }
    .deserialize(&mut deserializer)
    .and_then(|facts| deserializer.end().map(|()| facts));
    match (facts, problem) {
        (_, Some(problem)) => Err(problem),
        (Ok(facts), None) => Ok(facts),
        (Err(_), None) => Err(invalid(SHAPE, "input")),
    }
}

fn text_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

/// The whole `input`; a problem found is left in `problem` (and the read stops with an error).
struct Input<'p> {
    problem: &'p mut Option<InvalidRequest>,
}

impl Input<'_> {
    fn refuse<E: de::Error>(&mut self, message: String, param: &str) -> E {
        *self.problem = Some(invalid(message, param));
        E::custom("refused")
    }
}

impl<'de> DeserializeSeed<'de> for Input<'_> {
    type Value = InputFacts;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<InputFacts, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Input<'_> {
    type Value = InputFacts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHAPE)
    }

    fn visit_str<E: de::Error>(mut self, text: &str) -> Result<InputFacts, E> {
        if text.is_empty() {
            return Err(self.refuse("`input` must not be an empty string".into(), "input"));
        }
        let tokens = text_tokens(text.len());
        Ok(InputFacts {
            kind: InputKind::Text,
            inputs: 1,
            tokens,
            largest: tokens,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<InputFacts, A::Error> {
        // The first item says which of the three list shapes this is; the others must agree.
        let mut shape: Option<Item> = None;
        let (mut count, mut tokens, mut largest) = (0usize, 0u64, 0u64);
        loop {
            let index = count;
            let item = match seq.next_element_seed(ItemSeed {
                index,
                problem: &mut *self.problem,
            }) {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(error) => {
                    if self.problem.is_none() {
                        *self.problem = Some(invalid(
                            format!("`input[{index}]` must be a string or an array of token ids"),
                            &format!("input[{index}]"),
                        ));
                    }
                    return Err(error);
                }
            };
            let first = *shape.get_or_insert(item);
            if std::mem::discriminant(&first) != std::mem::discriminant(&item) {
                return Err(self.refuse(
                    format!("`input[{index}]` is not like `input[0]`: {SHAPE}, not a mix"),
                    &format!("input[{index}]"),
                ));
            }
            count += 1;
            let limit = match item {
                Item::Token => MAX_TOKENS_PER_INPUT,
                _ => MAX_INPUTS,
            };
            if count > limit {
                let what = match item {
                    Item::Token => format!("a token array of at most {MAX_TOKENS_PER_INPUT} ids"),
                    _ => format!("at most {MAX_INPUTS} inputs"),
                };
                return Err(self.refuse(format!("`input` must hold {what}"), "input"));
            }
            let cost = match item {
                Item::Text(bytes) => text_tokens(bytes),
                Item::Tokens(ids) => ids as u64,
                Item::Token => 1,
            };
            tokens = tokens.saturating_add(cost);
            largest = largest.max(cost);
        }
        match shape {
            None => Err(self.refuse("`input` must not be an empty array".into(), "input")),
            // A flat list of ids is one input.
            Some(Item::Token) => Ok(InputFacts {
                kind: InputKind::Tokens,
                inputs: 1,
                tokens,
                largest: tokens,
            }),
            Some(item) => Ok(InputFacts {
                kind: match item {
                    Item::Text(_) => InputKind::Text,
                    _ => InputKind::Tokens,
                },
                inputs: count,
                tokens,
                largest,
            }),
        }
    }
}

/// One item of an `input` list.
#[derive(Clone, Copy, Debug)]
enum Item {
    /// A string of this many bytes.
    Text(usize),
    /// A token array of this many ids.
    Tokens(usize),
    /// One token id (the list is one token array).
    Token,
}

struct ItemSeed<'p> {
    index: usize,
    problem: &'p mut Option<InvalidRequest>,
}

impl ItemSeed<'_> {
    fn note(&mut self, what: &str) {
        let param = format!("input[{}]", self.index);
        *self.problem = Some(invalid(format!("`{param}` {what}"), &param));
    }

    fn refuse<E: de::Error>(&mut self, what: &str) -> E {
        self.note(what);
        E::custom("refused")
    }
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = Item;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Item, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a token id or an array of token ids")
    }

    fn visit_str<E: de::Error>(mut self, text: &str) -> Result<Item, E> {
        if text.is_empty() {
            return Err(self.refuse("must not be an empty string"));
        }
        Ok(Item::Text(text.len()))
    }

    fn visit_u64<E: de::Error>(mut self, id: u64) -> Result<Item, E> {
        if id > u64::from(u32::MAX) {
            return Err(self.refuse("is not a token id (too large)"));
        }
        Ok(Item::Token)
    }

    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<Item, E> {
        Err(self.refuse("is not a token id (token ids are non-negative integers)"))
    }

    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<Item, E> {
        Err(self.refuse("is not a token id (token ids are integers)"))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Item, A::Error> {
        let mut ids = 0usize;
        loop {
            match seq.next_element::<TokenId>() {
                Ok(Some(TokenId)) => ids += 1,
                Ok(None) => break,
                Err(error) => {
                    self.note("must hold only token ids (integers from 0 to 4294967295)");
                    return Err(error);
                }
            }
            if ids > MAX_TOKENS_PER_INPUT {
                return Err(self.refuse(&format!(
                    "must hold at most {MAX_TOKENS_PER_INPUT} token ids"
                )));
            }
        }
        if ids == 0 {
            return Err(self.refuse("must not be an empty array"));
        }
        Ok(Item::Tokens(ids))
    }
}

/// One id of a token array, checked and not kept.
struct TokenId;

impl<'de> de::Deserialize<'de> for TokenId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TokenId, D::Error> {
        u32::deserialize(deserializer).map(|_| TokenId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(raw: &str) -> InputFacts {
        read(raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"))
    }

    fn refused(raw: &str) -> String {
        read(raw).unwrap_err().param.unwrap()
    }

    #[test]
    fn the_four_shapes_are_read_with_their_counts_and_estimates() {
        assert_eq!(
            facts(r#""hello world""#),
            InputFacts {
                kind: InputKind::Text,
                inputs: 1,
                tokens: 3,
                largest: 3
            }
        );
        let list = facts(r#"["a", "bbbbbbbbb", "c\"d"]"#);
        assert_eq!(
            (list.kind, list.inputs, list.tokens, list.largest),
            (InputKind::Text, 3, 5, 3)
        );
        let ids = facts("[1, 2, 3, 4294967295]");
        assert_eq!(
            (ids.kind, ids.inputs, ids.tokens),
            (InputKind::Tokens, 1, 4)
        );
        let arrays = facts("[[1, 2], [3], [4, 5, 6]]");
        assert_eq!(
            (arrays.kind, arrays.inputs, arrays.tokens, arrays.largest),
            (InputKind::Tokens, 3, 6, 3)
        );
    }

    #[test]
    fn bad_inputs_are_refused_naming_the_item() {
        let cases = [
            ("5", "input"),
            ("{}", "input"),
            ("true", "input"),
            (r#""""#, "input"),
            ("[]", "input"),
            (r#"["a", ""]"#, "input[1]"),
            (r#"["a", 1]"#, "input[1]"),
            (r#"[1, "a"]"#, "input[1]"),
            ("[[1], 2]", "input[1]"),
            ("[[1, -2]]", "input[0]"),
            ("[[1.5]]", "input[0]"),
            ("[[]]", "input[0]"),
            (r#"[["a"]]"#, "input[0]"),
            ("[-1]", "input[0]"),
            ("[4294967296]", "input[0]"),
            ("[null]", "input[0]"),
            (r#"[{"text": "a"}]"#, "input[0]"),
        ];
        for (raw, param) in cases {
            assert_eq!(refused(raw), param, "{raw}");
        }
    }

    #[test]
    fn too_many_inputs_or_ids_are_refused_without_reading_further() {
        let many = format!("[{}\"x\"]", "\"x\",".repeat(MAX_INPUTS));
        let error = read(&many).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("input"));
        assert!(error.message.contains("2048"), "{}", error.message);
        assert_eq!(
            facts(&format!("[{}\"x\"]", "\"x\",".repeat(MAX_INPUTS - 1))).inputs,
            MAX_INPUTS
        );
        let long = format!("[[{}1]]", "1,".repeat(MAX_TOKENS_PER_INPUT));
        assert_eq!(refused(&long), "input[0]");
        let flat = format!("[{}1]", "1,".repeat(MAX_TOKENS_PER_INPUT));
        assert_eq!(refused(&flat), "input");
    }
}
