//! `GET /v1/models`: the `auto` modes first, then the chat routes a request can be served by,
//! then the embedding models' routes, apart: each entry says its `type` (`chat` or
//! `embeddings`), so a chat client can leave the embedding models out of its model picker. In
//! Anthropic's list shape (chat models only) when the request carries `anthropic-version`.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use freerouter::api::anthropic::{ListedModel, model_list};
use freerouter::catalog::CatalogSnapshot;
use freerouter::catalog::data_use::trains_on_prompts;
use freerouter::routing::embeddings::{is_embeddings, resolve};
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
        let routes = snapshot
            .servable()
            .filter(|r| !is_embeddings(r))
            .map(|route| ListedModel {
                id: &route.route_id,
                display_name: &route.display_name,
                max_input_tokens: Some(route.context_window_tokens),
                max_tokens: Some(route.max_output_tokens)
                    .filter(|&most| most != freerouter::catalog::UNDECLARED_MAX_OUTPUT),
            });
        return Json(model_list(modes.chain(routes)));
    }
    let modes = MODES.into_iter().map(
        |id| json!({"id": id, "object": "model", "created": 0, "owned_by": "freerouter", "type": "chat"}),
    );
    let chat = snapshot.servable().filter(|r| !is_embeddings(r));
    let routes = chat.map(|route| {
        let provider = snapshot.provider(&route.provider);
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
            "type": "chat",
            "trains_on_prompts": provider.is_some_and(|p| trains_on_prompts(route, p)),
            "trains_on_prompts_source": provider.and_then(|p| p.trains_on_prompts_source.clone()),
        })
    });
    let embeddings = embedding_entries(&snapshot, &state);
    let data: Vec<Value> = modes.chain(routes).chain(embeddings).collect();
    Json(json!({"object": "list", "data": data}))
}

/// The embeddings routes, each saying whether it serves what `auto` means on `/v1/embeddings`.
fn embedding_entries(snapshot: &CatalogSnapshot, state: &AppState) -> Vec<Value> {
    let setting = state.engine.settings.default_embedding_model.as_deref();
    let default = resolve(snapshot, "auto", setting)
        .map(|model| model.routes)
        .unwrap_or_default();
    snapshot
        .servable()
        .filter(|r| is_embeddings(r))
        .map(|route| {
            json!({
                "id": route.route_id,
                "object": "model",
                "created": 0,
                "owned_by": route.provider,
                "type": "embeddings",
                "display_name": route.display_name,
                "aliases": route.aliases,
                "rank": route.rank,
                "context_window": route.context_window_tokens,
                "tags": route.tags,
                "default": default.iter().any(|d| d.route_id == route.route_id),
            })
        })
        .collect()
}
