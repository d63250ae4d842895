//! Reading a client's body without building a tree of it: top-level fields and list items as raw
//! JSON texts, each parsed into a small borrowed type where it is used, errors naming the field.

use super::error::InvalidMessages;
use crate::api::bounded::RawItems;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A JSON object's fields in the order sent, values raw; a repeated name keeps its last value and
/// `null` counts as absent.
pub(crate) struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The fields of `text`, which must be a JSON object (`what` names it in the error).
    pub fn of(text: &'a str, what: &str) -> Result<Self, InvalidMessages> {
        if !text.trim_start().starts_with('{') {
            return Err(match serde_json::from_str::<de::IgnoredAny>(text) {
                Ok(_) => InvalidMessages::body(format!("{what} must be a JSON object")),
                Err(e) => InvalidMessages::body(format!("{what} is not valid JSON: {e}")),
            });
        }
        serde_json::from_str(text)
            .map_err(|e| InvalidMessages::body(format!("{what} is not valid JSON: {e}")))
    }

    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
            .filter(|v| v.get() != "null")
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    fields.retain(|(k, _)| *k != name);
                    fields.push((name, value));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// The items of the array at `param` (at most [`bounded::MAX_ITEMS`](crate::api::bounded::MAX_ITEMS)).
pub(crate) fn items<'a>(
    raw: &'a RawValue,
    param: &str,
) -> Result<Vec<&'a RawValue>, InvalidMessages> {
    if !raw.get().starts_with('[') {
        return Err(InvalidMessages::at(param, "must be an array"));
    }
    serde_json::from_str::<RawItems<'a>>(raw.get())
        .map(|RawItems(items)| items)
        .map_err(|e| InvalidMessages::at(param, e.to_string()))
}

/// `raw` as a `T`, or a refusal saying what `param` must be.
pub(crate) fn typed<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    param: &str,
    must_be: &str,
) -> Result<T, InvalidMessages> {
    serde_json::from_str(raw.get())
        .map_err(|_| InvalidMessages::at(param, format!("must be {must_be}")))
}

/// A string value (borrowed unless it holds escapes).
pub(crate) fn string<'a>(raw: &'a RawValue, param: &str) -> Result<Cow<'a, str>, InvalidMessages> {
    if !raw.get().starts_with('"') {
        return Err(InvalidMessages::at(param, "must be a string"));
    }
    match serde_json::from_str::<&'a str>(raw.get()) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) => typed::<String>(raw, param, "a string").map(Cow::Owned),
    }
}

/// Whether a raw value is a JSON object.
pub(crate) fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}
