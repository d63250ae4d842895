//! Arrays read from a client body as raw items, with a cap on their count: a body padded with a
//! million `0`s is refused after the cap instead of becoming a million parsed nodes.

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// More items than this in one array of a client body is refused.
pub const MAX_ITEMS: usize = 10_000;

/// An array's items as raw JSON texts, at most [`MAX_ITEMS`] of them.
pub struct RawItems<'a>(pub Vec<&'a RawValue>);

impl<'de> Deserialize<'de> for RawItems<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = RawItems<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at most {MAX_ITEMS} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    if items.len() == MAX_ITEMS {
                        return Err(de::Error::custom(format!("more than {MAX_ITEMS} items")));
                    }
                    items.push(item);
                }
                Ok(RawItems(items))
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

/// The items of a raw value that must be an array; `None` when it is not one (or is too long).
pub fn items(raw: &RawValue) -> Option<Vec<&RawValue>> {
    if !raw.get().trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str::<RawItems<'_>>(raw.get())
        .ok()
        .map(|items| items.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_is_split_into_raw_items_and_a_long_one_is_refused() {
        let raw: &RawValue = serde_json::from_str(r#"[{"a":1}, "x", [2]]"#).unwrap();
        let got: Vec<&str> = items(raw).unwrap().iter().map(|r| r.get()).collect();
        assert_eq!(got, vec![r#"{"a":1}"#, r#""x""#, "[2]"]);
        let long = format!("[{}0]", "0,".repeat(MAX_ITEMS));
        let raw: &RawValue = serde_json::from_str(&long).unwrap();
        assert!(items(raw).is_none());
        let object: &RawValue = serde_json::from_str("{}").unwrap();
        assert!(items(object).is_none());
    }
}
