//! `GET …/models`: the listed models in creation order (ids as given), then the extra entries.

use axum::Json;
use serde_json::{Value, json};

use super::state::SimState;

pub(crate) fn list(state: &SimState) -> Json<Value> {
    let mut data: Vec<Value> = state
        .listed_models()
        .iter()
        .map(|m| json!({"id": m.id(), "object": "model", "created": m.created(), "owned_by": "simulator"}))
        .collect();
    data.extend(state.extra_listing());
    Json(json!({"object": "list", "data": data}))
}
