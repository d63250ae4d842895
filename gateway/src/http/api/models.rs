//! `GET /v1/models`: the `auto` modes first, then the routes a request can be served by — in
//! OpenAI's list shape, or Anthropic's when the request carries `anthropic-version`.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use freerouter::api::anthropic::{ListedModel, model_list};
use serde_json::{Value, json};

const MODES: [&str; 3] = ["auto", "auto-fast", "auto-balanced"];

pub async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let snapshot = state.engine.catalog.snapshot();
    if headers.contains_key("anthropic-version") {
        let modes = MODES.into_iter().map(|id| ListedModel {
            id,
            display_name: id,
            max_input_tokens: None,
            max_tokens: None,
        });
        let routes = snapshot.servable().map(|route| ListedModel {
            id: &route.route_id,
            display_name: &route.display_name,
            max_input_tokens: Some(route.context_window_tokens),
            max_tokens: Some(route.max_output_tokens),
        });
        return Json(model_list(modes.chain(routes)));
    }
    let modes = MODES
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
