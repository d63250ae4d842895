//! The web console: server-rendered pages (`/`, `/models`, `/status`, `/chat`, `/login`) with
//! their assets embedded in the binary. Pages read without JavaScript (only the chat playground
//! needs it); changes need an admin session and a CSRF token (`session`). With
//! `auth.protect_console`, reading the pages needs the session too (sign-in and assets stay open).
//!
//! # Layout
//! - `html`: escaping, the page layout, formatting; `svg`: the charts.
//! - `session`: the admin cookie, CSRF tokens and origin checks; `login`: the sign-in form.
//! - `overview`, `models`, `status`, `chat`: one page each; `actions`: the forms' changes.
//! - `traffic`: the request log as series, totals and reasons, for the overview and status pages.

mod actions;
mod chat;
mod html;
mod login;
mod models;
mod overview;
mod session;
mod status;
mod svg;
mod traffic;

use crate::http::body::buffer_body;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

/// Scripts and styles only from this site, no framing, forms only back to it: with every value
/// escaped as well, injected markup has nothing to run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("assets/console.css");
const CHAT_JS: &str = include_str!("assets/chat.js");
const FAVICON: &str = include_str!("assets/favicon.svg");

/// The console's routes, to be merged into the gateway's router.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page_handler))
        .route("/models", get(models::page_handler))
        .route("/models/enable", post(actions::enable))
        .route("/models/disable", post(actions::disable))
        .route("/models/rank", post(actions::rank))
        .route("/models/accept", post(actions::accept))
        .route("/models/reject", post(actions::reject))
        .route("/status", get(status::page_handler))
        .route("/chat", get(chat::page_handler))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/assets/console.css", get(|| asset(CSS, "text/css")))
        .route("/assets/chat.js", get(|| asset(CHAT_JS, "text/javascript")))
        .route(
            "/assets/favicon.svg",
            get(|| asset(FAVICON, "image/svg+xml")),
        )
        .route_layer(from_fn_with_state(state.clone(), buffer_body))
        .route_layer(from_fn_with_state(state.clone(), signed_in_when_protected))
        .route_layer(from_fn_with_state(state.clone(), demo_banner))
        .layer(axum::middleware::map_response(protect))
}

/// With `auth.protect_console`, a page is shown only to a signed-in admin; others are sent to
/// the sign-in form. The form itself, the assets it needs, and the POSTs (which check the session
/// themselves) pass.
async fn signed_in_when_protected(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let open = path == "/login" || path.starts_with("/assets/") || request.method() == Method::POST;
    if !state.settings.auth.protect_console || open {
        return next.run(request).await;
    }
    if session::viewer(&state, request.headers(), freerouter::time::now_ms()).is_admin() {
        next.run(request).await
    } else {
        Redirect::to("/login").into_response()
    }
}

/// What every page says on top in demo mode.
const DEMO_BANNER: &str = r#"<div class="demo-banner" role="note"><strong>Demo mode</strong> — the routes
<code>demo/…</code> are simulated free tiers served by this gateway itself, on a database of their own;
answers come from no real model. Start without <code>--demo</code>, with a provider key, to route to real free
tiers.</div>
"#;

/// In demo mode, every page gets the banner above its content (one place, so no page can miss it).
async fn demo_banner(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !state.demo || !is_page {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "page too large",
        )
            .into_response();
    };
    let html =
        String::from_utf8_lossy(&bytes).replacen("<main>", &format!("{DEMO_BANNER}<main>"), 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(html))
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&format!("{content_type}; charset=utf-8"))
                    .unwrap_or(HeaderValue::from_static("text/plain")),
            ),
            // Short: the files change with the binary and carry no version in their names.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every console response; pages are never cached (they hold CSRF tokens).
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
