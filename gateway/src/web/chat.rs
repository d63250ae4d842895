//! `/chat`: the playground. The page is a form; `assets/chat.js` posts it to
//! `/v1/chat/completions` with `stream: true`, appends the answer as it streams, and shows the
//! route that served it and the attempt trail from the response headers.

use super::html::{Esc, Nav, page};
use super::session::viewer;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use freerouter::time::now_ms;
use std::fmt::Write;

pub async fn page_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = viewer(&state, &headers, now_ms());
    let snapshot = state.engine.catalog.snapshot();
    let mut options = String::from(
        r#"<option value="auto" selected>auto (strongest first)</option><option value="auto-fast">auto-fast</option><option value="auto-balanced">auto-balanced</option>"#,
    );
    for route in snapshot
        .servable()
        .filter(|r| !freerouter::routing::embeddings::is_embeddings(r))
    {
        let _ = write!(
            options,
            r#"<option value="{id}">{id}</option>"#,
            id = Esc(&route.route_id)
        );
    }
    let key_field = if state.settings.auth.api_keys.is_empty() {
        String::new()
    } else {
        // Client keys are required on /v1/*: the page cannot know one, so the user types it.
        r#"<label for="api-key">Client API key</label><input type="password" id="api-key" name="api_key" autocomplete="off" placeholder="sk-…">"#.to_string()
    };
    let body = format!(
        r#"<noscript><p class="notice">The playground streams answers with JavaScript; the other pages work without it.</p></noscript>
<form id="chat" class="chat"><div class="row"><label for="model">Model</label><select id="model" name="model">{options}</select>{key_field}<label><input type="checkbox" id="strict" name="strict"> only this model</label></div>
<label for="prompt">Message</label><textarea id="prompt" name="prompt" rows="4" required placeholder="Ask something…"></textarea>
<div class="row"><button type="submit" id="send">Send</button><button type="button" id="reset" class="link">New conversation</button></div></form>
<section class="answer"><dl class="served"><dt>Served by</dt><dd id="route">—</dd><dt>Attempts</dt><dd id="attempts">—</dd><dt>Trail</dt><dd id="trail" class="trail">—</dd></dl>
<div id="transcript" class="transcript" aria-live="polite"></div>
<p id="error" class="notice error" hidden></p></section>
<script src="/assets/chat.js"></script>"#
    );
    page("Chat", Nav::Chat, &viewer, &body)
}
