//! The console's changes: enable, disable, set rank, accept or reject a suggestion. Each one
//! is allowed only by `session::authorize_post` and goes through the same library function as
//! adminctl and the admin API, then redirects back to `/models` (post/redirect/get).

use super::html::{Esc, Nav, page_with_status, refused, url_encode};
use super::session::{authorize_post, viewer};
use crate::state::AppState;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use freerouter::admin::{AdminError, catalog};
use freerouter::maintenance::apply::{self, ApplyError, apply};
use freerouter::store::SuggestionStatus;
use freerouter::time::now_ms;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct RouteForm {
    route: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct RankForm {
    route: String,
    rank: i64,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub struct SuggestionForm {
    id: i64,
    #[serde(default)]
    csrf: String,
}

fn done(what: &str, route: &str) -> Response {
    Redirect::to(&format!("/models?done={what}&route={}", url_encode(route))).into_response()
}

/// A change that could not be made, as a page.
fn failed(state: &AppState, headers: &HeaderMap, error: AdminError) -> Response {
    let status = match &error {
        AdminError::UnknownRoute(_)
        | AdminError::UnknownSuggestion(_)
        | AdminError::Apply(ApplyError::RouteGone(_)) => StatusCode::NOT_FOUND,
        AdminError::Apply(ApplyError::NotPending(_)) => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let message = if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%error, "a console change failed");
        "The database could not be reached.".to_string()
    } else {
        error.to_string()
    };
    let body = format!(
        r#"<p class="notice error">{}</p><p><a href="/models">Back to Models</a></p>"#,
        Esc(&message)
    );
    let viewer = viewer(state, headers, now_ms());
    page_with_status(status, "Not changed", Nav::Models, &viewer, &body)
}

fn bad_form(state: &AppState, headers: &HeaderMap, rejection: &FormRejection) -> Response {
    let viewer = viewer(state, headers, now_ms());
    let body = format!(
        r#"<p class="notice error">The form was not understood: {}</p><p><a href="/models">Back to Models</a></p>"#,
        Esc(&rejection.body_text())
    );
    page_with_status(
        StatusCode::BAD_REQUEST,
        "Not changed",
        Nav::Models,
        &viewer,
        &body,
    )
}

/// A form that carries its CSRF token.
trait WithCsrf {
    fn csrf(&self) -> &str;
}

impl WithCsrf for RouteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl WithCsrf for RankForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl WithCsrf for SuggestionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The form, when it was understood and the request may change things; else the page saying why not.
fn admitted<F: WithCsrf>(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<F>, FormRejection>,
) -> Result<F, Box<Response>> {
    let Form(form) = form.map_err(|rejection| Box::new(bad_form(state, headers, &rejection)))?;
    let now = now_ms();
    authorize_post(state, headers, form.csrf(), now)
        .map_err(|refusal| Box::new(refused(refusal, &viewer(state, headers, now))))?;
    Ok(form)
}

pub async fn enable(
    state: State<AppState>,
    headers: HeaderMap,
    form: Result<Form<RouteForm>, FormRejection>,
) -> Response {
    set_enabled(state, headers, form, true).await
}

pub async fn disable(
    state: State<AppState>,
    headers: HeaderMap,
    form: Result<Form<RouteForm>, FormRejection>,
) -> Response {
    set_enabled(state, headers, form, false).await
}

async fn set_enabled(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<RouteForm>, FormRejection>,
    enabled: bool,
) -> Response {
    let form = match admitted(&state, &headers, form) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    match catalog::set_enabled(&state.store, &form.route, enabled, now_ms()).await {
        Ok(()) => done(if enabled { "enabled" } else { "disabled" }, &form.route),
        Err(error) => failed(&state, &headers, error),
    }
}

pub async fn rank(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<RankForm>, FormRejection>,
) -> Response {
    let form = match admitted(&state, &headers, form) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    match catalog::set_rank(&state.store, &form.route, form.rank, now_ms()).await {
        Ok(()) => done("ranked", &form.route),
        Err(error) => failed(&state, &headers, error),
    }
}

/// Accepting applies the suggestion, as `POST /v1/gateway/endpoint-diagnosis/apply` does.
pub async fn accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SuggestionForm>, FormRejection>,
) -> Response {
    let form = match admitted(&state, &headers, form) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let outcome = async {
        let suggestion = pending(&state, form.id).await?;
        apply(&state.store, &suggestion, "human", now_ms()).await?;
        Ok::<_, AdminError>(suggestion)
    }
    .await;
    match outcome {
        Ok(suggestion) => done("accepted", &suggestion.route_id),
        Err(error) => failed(&state, &headers, error),
    }
}

/// Rejecting a discovered route removes it, as `adminctl models reject` does; rejecting any other
/// suggestion only closes it.
pub async fn reject(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SuggestionForm>, FormRejection>,
) -> Response {
    let form = match admitted(&state, &headers, form) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let outcome = async {
        let suggestion = pending(&state, form.id).await?;
        apply::reject(&state.store, &suggestion, "human", now_ms()).await?;
        Ok::<_, AdminError>(suggestion)
    }
    .await;
    match outcome {
        Ok(suggestion) => done("rejected", &suggestion.route_id),
        Err(error) => failed(&state, &headers, error),
    }
}

async fn pending(state: &AppState, id: i64) -> Result<freerouter::store::Suggestion, AdminError> {
    state
        .store
        .suggestions(Some(SuggestionStatus::Pending))
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(AdminError::UnknownSuggestion(id))
}
