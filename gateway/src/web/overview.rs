//! `/`: the overview — traffic and success over the last day, tokens today, the catalog in numbers,
//! and the providers that have keys.

use super::html::{Esc, Nav, number, page, percent, unavailable};
use super::session::viewer;
use super::traffic::{DAY_MS, HOUR_MS, chart, series, total};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use freerouter::store::SuggestionStatus;
use freerouter::time::now_ms;
use std::fmt::Write;

pub async fn page_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = now_ms();
    let viewer = viewer(&state, &headers, now);
    let (day, pending) = match tokio::try_join!(
        series(&state.store, now, 24, HOUR_MS),
        state.store.suggestions(Some(SuggestionStatus::Pending))
    ) {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "the overview could not read the store");
            return unavailable(&viewer);
        }
    };
    let last_day = total(&day);
    let midnight = now.div_euclid(DAY_MS) * DAY_MS;
    let today = total(
        &day.iter()
            .filter(|b| b.start_ms >= midnight)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let snapshot = state.engine.catalog.snapshot();
    let enabled = snapshot.routes.iter().filter(|r| r.enabled).count();
    let servable = snapshot.servable().count();

    let mut body = String::with_capacity(16 * 1024);
    let card = |body: &mut String, label: &str, value: &str, note: &str| {
        let _ = write!(
            body,
            r#"<div class="card"><div class="label">{label}</div><div class="value">{value}</div><div class="note">{note}</div></div>"#
        );
    };
    body.push_str(r#"<section class="cards">"#);
    card(
        &mut body,
        "Requests, last 24 h",
        &number(last_day.requests),
        &format!(
            "{} in the last hour",
            number(day.last().map_or(0, |b| b.requests))
        ),
    );
    card(
        &mut body,
        "Success rate, last 24 h",
        &percent(last_day.served, last_day.requests),
        &format!("{} served after a fallback", number(last_day.fell_back)),
    );
    card(
        &mut body,
        "Tokens today (UTC)",
        &number(today.tokens_in + today.tokens_out),
        &format!(
            "{} in · {} out",
            number(today.tokens_in),
            number(today.tokens_out)
        ),
    );
    card(
        &mut body,
        "Routes",
        &format!("{servable} servable"),
        &format!(
            "{enabled} enabled of {} in the catalog",
            snapshot.routes.len()
        ),
    );
    card(
        &mut body,
        "Waiting for a decision",
        &pending.len().to_string(),
        r#"<a href="/models#pending">see Models</a>"#,
    );
    body.push_str("</section>");

    let _ = write!(
        body,
        r#"<section><h2>Traffic, last 24 hours</h2>{}<p class="legend"><span class="key served"></span>served <span class="key failed"></span>failed · hourly, UTC</p></section>"#,
        chart("Requests per hour over the last 24 hours", &day, 3)
    );

    body.push_str(r#"<section><h2>Providers with keys</h2>"#);
    let with_keys: Vec<_> = state.providers.values().filter(|p| p.usable()).collect();
    if with_keys.is_empty() {
        body.push_str(
            r#"<p class="notice">No provider has a key yet: set one (GROQ_API_KEY, GEMINI_API_KEY, OPENROUTER_API_KEY, …) in the environment or .env and restart.</p>"#,
        );
    } else {
        body.push_str(
            r#"<table><thead><tr><th>provider</th><th class="num">keys</th><th class="num">routes enabled</th><th>day resets</th></tr></thead><tbody>"#,
        );
        for provider in &with_keys {
            let routes = snapshot
                .routes
                .iter()
                .filter(|r| r.provider == provider.name);
            let (all, on) = routes.fold((0, 0), |(all, on), r| {
                (all + 1, on + usize::from(r.enabled))
            });
            let keys = if provider.keyless {
                "none needed".to_string()
            } else {
                provider.keys.len().to_string()
            };
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td class="num">{keys}</td><td class="num">{on} / {all}</td><td>{:02}:{:02} UTC</td></tr>"#,
                Esc(&provider.name),
                provider.day_reset_minute / 60,
                provider.day_reset_minute % 60,
            );
        }
        body.push_str("</tbody></table>");
    }
    let without = state.providers.len() - with_keys.len();
    if without > 0 {
        let _ = write!(
            body,
            r#"<p class="muted">{without} more provider(s) have no key; <a href="/status">Status</a> lists them.</p>"#
        );
    }
    body.push_str("</section>");
    page("Overview", Nav::Overview, &viewer, &body)
}
