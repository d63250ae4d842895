//! `/models`: the ranked catalog with each route's health and tags, and the maintainer's pending
//! suggestions with their evidence. A signed-in admin gets the forms (see `actions`); everyone
//! else reads the same tables.

use super::html::{Esc, Nav, duration, escape, page, unavailable, utc};
use super::session::{Viewer, viewer};
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use freerouter::catalog::data_use::{TRAINS_ON_PROMPTS, trains_on_prompts};
use freerouter::health::HealthState;
use freerouter::store::{Suggestion, SuggestionKind, SuggestionStatus};
use freerouter::time::{EpochMs, now_ms};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write;

/// What the last change did (after a form's redirect).
#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    route: Option<String>,
}

impl Done {
    fn message(&self) -> Option<String> {
        let route = Esc(self.route.as_deref().unwrap_or("the route"));
        let text = match self.done.as_deref()? {
            "enabled" => format!("{route} is enabled."),
            "disabled" => format!("{route} is disabled."),
            "ranked" => format!("{route} has its new rank."),
            "accepted" => format!("Accepted: {route} is applied."),
            "rejected" => format!("Rejected: {route}."),
            _ => return None,
        };
        Some(text)
    }
}

/// The badge of a health state, with the cooldown left when it has one.
pub fn health_badge(state: HealthState, cooldown_until_ms: EpochMs, now: EpochMs) -> String {
    let class = match state {
        HealthState::Healthy => "ok",
        HealthState::Cooling => "warn",
        HealthState::TooSlow => "warn",
        HealthState::PotentiallyOutdated => "bad",
    };
    let left = if cooldown_until_ms > now && state != HealthState::Healthy {
        format!(" · {} left", duration(cooldown_until_ms - now))
    } else {
        String::new()
    };
    format!(
        r#"<span class="badge {class}">{}{left}</span>"#,
        state.as_str().replace('_', " ")
    )
}

pub async fn page_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    done: Result<Query<Done>, QueryRejection>,
) -> Response {
    let now = now_ms();
    let viewer = viewer(&state, &headers, now);
    let (routes, pending) = match tokio::try_join!(
        state.store.list_routes(),
        state.store.suggestions(Some(SuggestionStatus::Pending))
    ) {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "the models page could not read the store");
            return unavailable(&viewer);
        }
    };
    let health: HashMap<String, _> = state
        .engine
        .health
        .routes()
        .into_iter()
        .map(|h| (h.route_id.clone(), h))
        .collect();

    let mut body = String::with_capacity(64 * 1024 + routes.len() * 1024);
    if let Some(message) = done.ok().and_then(|Query(d)| d.message()) {
        let _ = write!(body, r#"<p class="notice ok" role="status">{message}</p>"#);
    }
    match &viewer {
        Viewer::Admin { .. } => {}
        Viewer::Anonymous => body.push_str(
            r#"<p class="notice">Read-only. <a href="/login">Sign in with the admin token</a> to change ranks, enable or disable routes, and decide on suggestions.</p>"#,
        ),
        Viewer::ReadOnly => body.push_str(
            r#"<p class="notice">Read-only: no admin token is configured (FREEROUTER__AUTH__ADMIN_TOKEN). Use <code>adminctl models …</code> to change the catalog.</p>"#,
        ),
    }

    let _ = write!(
        body,
        r#"<section id="pending"><h2>Waiting for a decision ({})</h2>"#,
        pending.len()
    );
    if pending.is_empty() {
        body.push_str(r#"<p class="muted">Nothing pending: the maintainer has found nothing new to suggest.</p>"#);
    }
    for suggestion in &pending {
        suggestion_card(&mut body, suggestion, &viewer, now);
    }
    body.push_str("</section>");

    let enabled = routes.iter().filter(|r| r.enabled).count();
    let _ = write!(
        body,
        r#"<section><h2>Catalog</h2><p class="muted">{} routes, {enabled} enabled. Rank 1 is tried first.</p>
<table class="catalog"><thead><tr><th class="num">rank</th><th>route</th><th>health</th><th>tags</th><th class="num">context</th><th>origin</th><th>enabled</th>{}</tr></thead><tbody>"#,
        routes.len(),
        if viewer.is_admin() {
            "<th>change</th>"
        } else {
            ""
        }
    );
    let csrf = viewer.csrf_field();
    for route in &routes {
        let id = escape(&route.route_id);
        let badge = match health.get(&route.route_id) {
            Some(h) => health_badge(h.effective_state(now), h.cooldown_until_ms, now),
            None => health_badge(HealthState::Healthy, 0, now),
        };
        let mut tags: String = route
            .tags
            .iter()
            .filter(|t| t.as_str() != TRAINS_ON_PROMPTS)
            .map(|t| format!(r#"<span class="tag">{}</span>"#, Esc(t)))
            .collect();
        if let Some(provider) = state.providers.get(&route.provider)
            && trains_on_prompts(route, provider)
        {
            let source = provider
                .trains_on_prompts_source
                .as_deref()
                .unwrap_or("this route's tag");
            let _ = write!(
                tags,
                r#"<span class="tag warn" title="{}">trains on prompts</span>"#,
                Esc(source)
            );
        }
        let _ = write!(
            body,
            r#"<tr data-route="{id}"{}><td class="num">{}</td><td><div>{}</div><div class="muted small">{id}</div></td><td>{badge}</td><td>{tags}</td><td class="num">{}</td><td>{}</td><td>{}</td>"#,
            if route.enabled { "" } else { r#" class="off""# },
            route.rank,
            Esc(&route.display_name),
            route.context_window_tokens,
            route.origin.as_str(),
            if route.enabled { "yes" } else { "no" },
        );
        if viewer.is_admin() {
            let (action, label) = if route.enabled {
                ("disable", "Disable")
            } else {
                ("enable", "Enable")
            };
            let _ = write!(
                body,
                r#"<td class="actions"><form method="post" action="/models/rank" class="inline">{csrf}<input type="hidden" name="route" value="{id}"><input type="number" name="rank" value="{}" min="1" max="1000000" aria-label="rank of {id}"><button type="submit">Set rank</button></form><form method="post" action="/models/{action}" class="inline">{csrf}<input type="hidden" name="route" value="{id}"><button type="submit" class="{action}">{label}</button></form></td>"#,
                route.rank
            );
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</tbody></table></section>");
    page("Models", Nav::Models, &viewer, &body)
}

fn suggestion_card(body: &mut String, suggestion: &Suggestion, viewer: &Viewer, now: EpochMs) {
    let what = match suggestion.kind {
        SuggestionKind::AddRoute => {
            "add a newly found free model (it waits disabled until accepted)"
        }
        SuggestionKind::RemoveRoute => "remove a route the provider no longer serves",
        SuggestionKind::ClearStale => "clear an outdated mark: the provider lists the model again",
    };
    let evidence =
        serde_json::to_string_pretty(&suggestion.evidence).unwrap_or_else(|_| "{}".into());
    let id = escape(&suggestion.route_id);
    let _ = write!(
        body,
        r#"<article class="suggestion" data-route="{id}"><header><span class="badge kind">{}</span> <strong>{id}</strong></header>
<p>{what}. Provider <code>{}</code>, upstream model <code>{}</code>; first seen {}, last seen {}.</p>
<details><summary>Evidence</summary><pre>{}</pre></details>"#,
        suggestion.kind.as_str(),
        Esc(&suggestion.provider),
        Esc(&suggestion.upstream_model),
        utc(suggestion.created_ms),
        super::html::ago(suggestion.seen_ms, now),
        Esc(&evidence),
    );
    if viewer.is_admin() {
        let csrf = viewer.csrf_field();
        let _ = write!(
            body,
            r#"<div class="decide"><form method="post" action="/models/accept" class="inline">{csrf}<input type="hidden" name="id" value="{n}"><button type="submit" class="accept">Accept</button></form><form method="post" action="/models/reject" class="inline">{csrf}<input type="hidden" name="id" value="{n}"><button type="submit" class="reject">Reject</button></form></div>"#,
            n = suggestion.id
        );
    }
    body.push_str("</article>\n");
}
