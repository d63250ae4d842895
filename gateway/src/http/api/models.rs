//! `GET /v1/models`: the `auto` modes first, then the routes a request can be served by.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let snapshot = state.engine.catalog.snapshot();
    let modes = ["auto", "auto-fast", "auto-balanced"]
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "freerouter"}));
    let routes = snapshot.servable().map(|route| {
        json!({
            "id": route.route_id,
            "object": "model",
            "created": 0,
            "owned_by": route.provider,
            "display_name": route.display_name,
            "rank": route.rank,
            "context_window": route.context_window_tokens,
            "max_output_tokens": route.max_output_tokens,
            "tags": route.tags,
        })
    });
    Json(json!({"object": "list", "data": modes.chain(routes).collect::<Vec<_>>()}))
}
