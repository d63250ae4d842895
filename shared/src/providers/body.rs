//! A JSON request body as its top-level fields, each value kept as the raw JSON text it came as:
//! the client's body is parsed once, and each upstream body is written by splicing those texts
//! (the route's model, an adapter's few rewrites) instead of rebuilding a tree per attempt.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A field's value as JSON text, shared by every attempt of a request.
pub type RawJson = Arc<RawValue>;

/// The raw JSON text of a value.
pub fn raw(value: &Value) -> RawJson {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    // A serialised `Value` is always valid JSON.
    RawValue::from_string(text).map_or_else(|_| null(), Arc::from)
}

fn null() -> RawJson {
    Arc::from(RawValue::NULL.to_owned())
}

/// The raw JSON text of a string.
pub fn raw_string(text: &str) -> RawJson {
    raw(&Value::String(text.to_string()))
}

/// A JSON object as ordered fields with raw values; later `set`s replace in place.
#[derive(Clone, Debug, Default)]
pub struct JsonObject {
    fields: Vec<(String, RawJson)>,
}

impl JsonObject {
    pub fn new() -> Self {
        Self::default()
    }

    /// The fields of a `Value` object (anything else makes an empty object).
    pub fn from_value(value: &Value) -> Self {
        let fields = value
            .as_object()
            .map(|map| map.iter().map(|(k, v)| (k.clone(), raw(v))).collect())
            .unwrap_or_default();
        Self { fields }
    }

    pub fn from_fields(fields: Vec<(String, RawJson)>) -> Self {
        Self { fields }
    }

    pub fn get(&self, name: &str) -> Option<&RawValue> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// A field parsed into a `Value` (adapters' rare rewrites; never the hot path).
    pub fn get_value(&self, name: &str) -> Option<Value> {
        self.get(name)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn set_raw(&mut self, name: &str, value: RawJson) {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some((_, slot)) => *slot = value,
            None => self.fields.push((name.to_string(), value)),
        }
    }

    pub fn set(&mut self, name: &str, value: &Value) {
        self.set_raw(name, raw(value));
    }

    pub fn remove(&mut self, name: &str) -> Option<RawJson> {
        let at = self.fields.iter().position(|(k, _)| k == name)?;
        Some(self.fields.remove(at).1)
    }

    /// Appends `item` to the array in `name` by splicing its text; a missing or non-array field
    /// becomes `[item]`.
    pub fn push_to_array(&mut self, name: &str, item: &Value) {
        let item = raw(item);
        let spliced = self.get(name).and_then(|array| {
            let text = array.get().trim_end();
            let open = text.strip_suffix(']')?.trim_end();
            if !open.trim_start().starts_with('[') {
                return None;
            }
            let separator = if open.trim_start() == "[" { "" } else { "," };
            RawValue::from_string(format!("{open}{separator}{}]", item.get())).ok()
        });
        match spliced {
            Some(array) => self.set_raw(name, Arc::from(array)),
            None => {
                let array = RawValue::from_string(format!("[{}]", item.get()))
                    .map_or_else(|_| null(), Arc::from);
                self.set_raw(name, array);
            }
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(k, _)| k.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawJson)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Keeps only the fields `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.fields.retain(|(k, _)| keep(k));
    }

    /// Edits the named fields as a `Value` map (an adapter's rewrite): they are parsed, handed to
    /// `edit`, and written back; a named field `edit` removed is removed, one it added is added.
    pub fn edit(&mut self, names: &[&str], edit: impl FnOnce(&mut Map<String, Value>)) {
        let mut map = Map::new();
        for name in names {
            if let Some(value) = self.get_value(name) {
                map.insert((*name).to_string(), value);
            }
        }
        edit(&mut map);
        for name in names {
            if !map.contains_key(*name) {
                self.remove(name);
            }
        }
        for (name, value) in &map {
            self.set(name, value);
        }
    }

    /// The object as JSON bytes: the field texts spliced, nothing re-serialised.
    pub fn to_bytes(&self) -> Vec<u8> {
        let size: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 8)
            .sum();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'{');
        for (i, (name, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Names are written through serde so an escaped name stays escaped.
            if serde_json::to_writer(&mut out, name).is_err() {
                out.extend_from_slice(b"\"\"");
            }
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        out.push(b'}');
        out
    }

    /// The object as a `Value` (tests, logs).
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.to_bytes()).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splicing_writes_the_same_object_a_rebuild_would() {
        let mut body = JsonObject::from_value(&json!({"model": "auto", "n": 1, "messages": []}));
        body.set("model", &json!("upstream-id"));
        body.push_to_array("messages", &json!({"role": "assistant", "content": "Hi"}));
        body.push_to_array("messages", &json!({"role": "user", "content": "and?"}));
        body.push_to_array("stop", &json!("END"));
        body.remove("n");
        body.set("quoted \"name\"", &json!(true));
        assert_eq!(
            body.to_value(),
            json!({"model": "upstream-id", "messages": [
                {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "and?"}],
                "stop": ["END"], "quoted \"name\"": true})
        );
    }

    #[test]
    fn a_field_that_is_not_an_array_becomes_one_when_pushed_to() {
        let mut body = JsonObject::from_value(&json!({"messages": "oops"}));
        body.push_to_array("messages", &json!(1));
        assert_eq!(body.to_value(), json!({"messages": [1]}));
    }
}
