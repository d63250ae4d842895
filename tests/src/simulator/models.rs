//! `GET /v1/models`: the listed models in creation order, then the extra entries.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::state::SimState;

pub(crate) async fn list(State(state): State<SimState>) -> Json<Value> {
    let mut data: Vec<Value> = state
        .listed_models()
        .iter()
        .map(|m| json!({"id": m.id(), "object": "model", "created": m.created(), "owned_by": "simulator"}))
        .collect();
    data.extend(state.extra_listing());
    Json(json!({"object": "list", "data": data}))
}
