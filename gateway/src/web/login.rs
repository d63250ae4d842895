//! `/login` and `/logout`: the admin token is typed into a form once and traded for a session
//! cookie (see `session`); it is never stored in the browser. Wrong tokens count against the
//! failed-auth throttle: after a few, the form answers 429 until the window has passed.

use super::html::{Nav, page, page_with_status, refused};
use super::session::{
    Refusal, Viewer, clear_cookie, issue, over_tls, same_origin, set_cookie, viewer,
};
use crate::http::auth::{SecretCheck, check_secret, peer};
use crate::state::AppState;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::header::{HOST, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use freerouter::time::now_ms;
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

/// Whether the page was reached on this machine itself (where plain http stays on the host).
fn local(headers: &HeaderMap) -> bool {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

fn form(headers: &HeaderMap, error: Option<&str>) -> String {
    let mut body = String::new();
    if let Some(error) = error {
        body.push_str(&format!(
            r#"<p class="notice error" role="alert">{error}</p>"#
        ));
    }
    if !over_tls(headers) && !local(headers) {
        body.push_str(
            r#"<p class="notice">This page came over plain http: the token crosses the network unencrypted. Put the gateway behind a TLS proxy, or sign in from the host itself.</p>"#,
        );
    }
    body.push_str(
        r#"<form method="post" action="/login" class="login"><label for="token">Admin token</label><input type="password" id="token" name="token" autocomplete="current-password" required autofocus><button type="submit">Sign in</button></form>
<p class="muted">The token is the gateway's FREEROUTER__AUTH__ADMIN_TOKEN. Signing in sets a cookie for 12 hours; the token itself is not kept.</p>"#,
    );
    body
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = viewer(&state, &headers, now_ms());
    let body = match &viewer {
        Viewer::ReadOnly => r#"<p class="notice">No admin token is configured, so this console is read-only. Set FREEROUTER__AUTH__ADMIN_TOKEN and restart to allow changes here.</p>"#.to_string(),
        Viewer::Admin { .. } => r#"<p class="notice ok">You are signed in. <a href="/models">Go to Models</a>.</p>"#.to_string(),
        Viewer::Anonymous => form(&headers, None),
    };
    page("Sign in", Nav::Login, &viewer, &body)
}

pub async fn submit(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    form_data: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let now = now_ms();
    let current = viewer(&state, &headers, now);
    let Some(token) = &state.settings.auth.admin_token else {
        return refused(Refusal::ReadOnly, &current);
    };
    if !same_origin(&headers) {
        return refused(Refusal::Forged, &current);
    }
    let presented = form_data.map(|Form(f)| f.token).unwrap_or_default();
    let ip = peer(&extensions).map(|p| p.ip());
    // An empty form is a guess too: every submission is checked and counted.
    match check_secret(&state, ip, Some(presented.trim()), token) {
        SecretCheck::Right => {}
        SecretCheck::Throttled(wait) => {
            let mut response = page_with_status(
                StatusCode::TOO_MANY_REQUESTS,
                "Sign in",
                Nav::Login,
                &current,
                &form(
                    &headers,
                    Some(&format!(
                        "Too many wrong tokens were tried. No token is checked for {wait} s; try again then."
                    )),
                ),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
        SecretCheck::Missing | SecretCheck::Wrong => {
            // A pause makes guessing slower still; the token should be long and random all the same.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return page_with_status(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                Nav::Login,
                &current,
                &form(&headers, Some("That is not the admin token.")),
            );
        }
    }
    let cookie = set_cookie(&issue(token.expose(), now), over_tls(&headers));
    let mut response = Redirect::to("/models").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

pub async fn logout(headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&clear_cookie(over_tls(&headers))) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}
