//! `/status`: route health with the cooldown left, resting and invalid keys, each key's quota
//! against its limits, traffic and the reasons for fallbacks over the last hour and day, and the
//! latest errors.

use super::html::{
    Esc, Nav, ago, duration, escape, number, page, percent, truncate, unavailable, utc,
};
use super::models::health_badge;
use super::session::viewer;
use super::svg::quota_meter;
use super::traffic::{HOUR_MS, chart, series, total};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use freerouter::admin::capacity::{WindowLeft, capacity};
use freerouter::admin::providers::{self, ProviderStatus};
use freerouter::health::HealthState;
use freerouter::store::{FailedRequest, HealthRecords, ROLLUP_MS, Reasons, TrafficBucket};
use freerouter::time::{EpochMs, now_ms};
use std::fmt::Write;

/// The latest errors shown.
const RECENT_ERRORS: u32 = 20;
/// The hour chart's buckets: the store's rollup resolution.
const FIVE_MINUTES: EpochMs = ROLLUP_MS;

/// Where the hour chart starts: the reasons cover the same buckets as the chart.
fn hour_start(now: EpochMs) -> EpochMs {
    now.div_euclid(FIVE_MINUTES) * FIVE_MINUTES - 11 * FIVE_MINUTES
}

fn day_start(now: EpochMs) -> EpochMs {
    now.div_euclid(HOUR_MS) * HOUR_MS - 23 * HOUR_MS
}

pub async fn page_handler(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = now_ms();
    let viewer = viewer(&state, &headers, now);
    let store = &state.store;
    let limited_routes: Vec<_> = state
        .engine
        .catalog
        .snapshot()
        .routes
        .iter()
        .filter(|r| r.limits != freerouter::config::Limits::default())
        .map(|r| (r.provider.clone(), r.route_id.clone(), r.limits))
        .collect();
    let read = tokio::try_join!(
        series(store, now, 12, FIVE_MINUTES),
        series(store, now, 24, HOUR_MS),
        store.trouble_reasons(hour_start(now)),
        store.trouble_reasons(day_start(now)),
        store.recent_failed_requests(RECENT_ERRORS),
        providers::status(store, &state.providers, Some(&state.engine.ledger), now),
        store.load_health(now),
        capacity(store, &state.providers, &limited_routes, now),
    );
    let (hour, day, hour_reasons, day_reasons, errors, quota, keys, room) = match read {
        Ok(found) => found,
        Err(error) => {
            tracing::warn!(%error, "the status page could not read the store");
            return unavailable(&viewer);
        }
    };
    let mut body = String::with_capacity(64 * 1024);
    routes_section(&mut body, &state, now);
    keys_section(&mut body, &keys, now);
    quota_section(&mut body, &quota, now);
    route_quota_section(&mut body, &room.windows, now);
    traffic_section(&mut body, &hour, &day, &hour_reasons, &day_reasons);
    errors_section(&mut body, &errors, now);
    page("Status", Nav::Status, &viewer, &body)
}

fn routes_section(body: &mut String, state: &AppState, now: EpochMs) {
    let snapshot = state.engine.catalog.snapshot();
    let board: std::collections::HashMap<String, _> = state
        .engine
        .health
        .routes()
        .into_iter()
        .map(|h| (h.route_id.clone(), h))
        .collect();
    let mut troubled = Vec::new();
    for route in &snapshot.routes {
        let Some(health) = board.get(&route.route_id) else {
            continue;
        };
        let effective = health.effective_state(now);
        let recent_error = health.last_error_ms.is_some_and(|at| now - at < HOUR_MS);
        if effective != HealthState::Healthy || recent_error {
            troubled.push((route, health, effective));
        }
    }
    let _ = write!(
        body,
        r#"<section><h2>Route health</h2><p class="muted">{} of {} routes healthy; routes not healthy or with an error in the last hour are listed.</p>"#,
        snapshot.routes.len()
            - troubled
                .iter()
                .filter(|t| t.2 != HealthState::Healthy)
                .count(),
        snapshot.routes.len()
    );
    if troubled.is_empty() {
        body.push_str(r#"<p class="notice ok">Every route is healthy.</p></section>"#);
        return;
    }
    body.push_str(
        r#"<table><thead><tr><th>route</th><th>state</th><th class="num">failures in a row</th><th>last error</th><th>last success</th></tr></thead><tbody>"#,
    );
    for (route, health, effective) in troubled {
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td>{}<div class="muted small">{}</div></td><td>{}</td></tr>"#,
            Esc(&route.route_id),
            health_badge(effective, health.cooldown_until_ms, now),
            health.consecutive_failures,
            Esc(&truncate(health.last_error.as_deref().unwrap_or("—"), 160)),
            health
                .last_error_ms
                .map(|at| ago(at, now))
                .unwrap_or_default(),
            health
                .last_success_ms
                .map_or_else(|| "never".to_string(), |at| ago(at, now)),
        );
    }
    body.push_str("</tbody></table></section>");
}

fn keys_section(body: &mut String, records: &HealthRecords, now: EpochMs) {
    let resting: Vec<_> = records.keys.iter().filter(|k| k.until_ms > now).collect();
    if resting.is_empty() && records.invalid_keys.is_empty() {
        return;
    }
    body.push_str(
        r#"<section><h2>Keys resting or refused</h2><table><thead><tr><th>provider</th><th>key</th><th>on</th><th>state</th><th>why</th></tr></thead><tbody>"#,
    );
    for key in resting {
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td><span class="badge warn">cooling · {} left</span></td><td>{}</td></tr>"#,
            Esc(&key.provider),
            Esc(&key.key_id),
            if key.route_id == "*" {
                "every route".to_string()
            } else {
                Esc(&key.route_id).to_string()
            },
            duration(key.until_ms - now),
            Esc(&key.reason),
        );
    }
    for mark in &records.invalid_keys {
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td><code>{}</code></td><td>every route</td><td><span class="badge bad">invalid</span></td><td>the provider refused it ({}); tried again in {}</td></tr>"#,
            Esc(&mark.provider),
            Esc(&mark.key_id),
            mark.status,
            duration((mark.retry_at_ms - now).max(0)),
        );
    }
    body.push_str("</tbody></table></section>");
}

/// A cell of used against limit: a meter when there is a limit.
/// A window's use against its limit, and when it is whole again (`returns`, once anything of it
/// is used).
fn quota_cell(
    label: &str,
    used: u64,
    limit: Option<u64>,
    returns: Option<EpochMs>,
    now: EpochMs,
) -> String {
    match limit {
        Some(limit) => format!(
            r#"<td class="quota">{}<div class="small">{} / {} · {} left{}</div></td>"#,
            quota_meter(label, used, limit),
            number(used),
            number(limit),
            number(limit.saturating_sub(used)),
            match returns.filter(|_| used > 0) {
                Some(at) => format!(
                    " · back to {} {}",
                    number(limit),
                    freerouter::routing::utc_moment(at, now)
                ),
                None => String::new(),
            },
        ),
        None => format!(
            r#"<td class="quota"><div class="small">{} used · no limit</div></td>"#,
            number(used)
        ),
    }
}

/// The windows a route declares of its own (a free tier's per-model limits), and a provider's
/// monthly and rolling windows (the per-key table has minute and day only), per key: what is
/// left and when it is whole again.
fn route_quota_section(body: &mut String, windows: &[WindowLeft], now: EpochMs) {
    let on_routes: Vec<_> = windows
        .iter()
        .filter(|w| w.scope != "*" || matches!(w.window, "month" | "rolling"))
        .collect();
    if on_routes.is_empty() {
        return;
    }
    body.push_str(
        r#"<section><h2>Quota per route</h2><p class="muted">Limits a route has of its own, and a provider's monthly and rolling windows, per key: what is left of each window and when it is whole again.</p><table class="quota"><thead><tr><th>route</th><th>key</th><th>window</th><th>left</th><th>capacity returns</th></tr></thead><tbody>"#,
    );
    for w in on_routes {
        let span = match (w.window, w.window_hours) {
            ("day", _) => "per day".to_string(),
            ("month", _) => "per month".to_string(),
            ("rolling", Some(hours)) => format!("per {hours} h (rolling)"),
            _ => "per minute".to_string(),
        };
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td><code>{}</code></td><td>{} {}</td>{}<td>{}</td></tr>"#,
            if w.scope == "*" {
                "every route".to_string()
            } else {
                Esc(&w.scope).to_string()
            },
            Esc(&w.key_id),
            w.counts,
            span,
            quota_cell(
                &format!("{} {span}", w.counts),
                w.used,
                Some(w.limit),
                None,
                now
            ),
            match w.full_at_ms {
                Some(at) => format!(
                    "back to {} {}",
                    number(w.limit),
                    freerouter::routing::utc_moment(at, now)
                ),
                None => "whole".to_string(),
            },
        );
    }
    body.push_str("</tbody></table></section>");
}

fn quota_section(body: &mut String, statuses: &[ProviderStatus], now: EpochMs) {
    body.push_str(r#"<section><h2>Quota per key</h2>"#);
    let with_keys: Vec<_> = statuses.iter().filter(|p| !p.keys.is_empty()).collect();
    if with_keys.is_empty() {
        body.push_str(r#"<p class="muted">No provider has a key.</p>"#);
    } else {
        body.push_str(
            r#"<p class="muted">Each key's use across its provider: the sliding minute and the provider's day. Keys are shown by fingerprint only.</p><table class="quota"><thead><tr><th>provider</th><th>key</th><th>requests / minute</th><th>requests / day</th><th>tokens / minute</th><th>tokens / day</th></tr></thead><tbody>"#,
        );
        for provider in with_keys {
            for key in &provider.keys {
                let limits = &provider.limits;
                let minute_back = key.usage.minute_oldest_ms.map(|oldest| oldest + 60_000);
                let day_back = Some(provider.day_turns_ms);
                let _ = write!(
                    body,
                    r#"<tr><td>{}{}</td><td><code>{}</code>{}</td>{}{}{}{}</tr>"#,
                    Esc(&provider.name),
                    if provider.trial {
                        r#" <span class="badge warn">trial credit</span>"#
                    } else {
                        ""
                    },
                    Esc(&key.key_id),
                    if key.invalid {
                        r#" <span class="badge bad">invalid</span>"#
                    } else {
                        ""
                    },
                    quota_cell(
                        "requests per minute",
                        key.usage.minute_requests,
                        limits.rpm,
                        minute_back,
                        now
                    ),
                    quota_cell(
                        "requests per day",
                        key.usage.day_requests,
                        limits.rpd,
                        day_back,
                        now
                    ),
                    quota_cell(
                        "tokens per minute",
                        key.usage.minute_tokens,
                        limits.tpm,
                        minute_back,
                        now
                    ),
                    quota_cell(
                        "tokens per day",
                        key.usage.day_tokens,
                        limits.tpd,
                        day_back,
                        now
                    ),
                );
            }
        }
        body.push_str("</tbody></table>");
    }
    let missing: Vec<_> = statuses.iter().filter(|p| !p.usable).collect();
    if !missing.is_empty() {
        body.push_str(r#"<details><summary>Providers without a key</summary><ul>"#);
        for provider in missing {
            let _ = write!(
                body,
                "<li>{}: set {}</li>",
                Esc(&provider.name),
                Esc(&provider.missing.join(", "))
            );
        }
        body.push_str("</ul></details>");
    }
    body.push_str("</section>");
}

fn traffic_section(
    body: &mut String,
    hour: &[TrafficBucket],
    day: &[TrafficBucket],
    hour_reasons: &Reasons,
    day_reasons: &Reasons,
) {
    let (h, d) = (total(hour), total(day));
    body.push_str(
        r#"<section><h2>Traffic</h2><table class="compact"><thead><tr><th></th><th class="num">last hour</th><th class="num">last 24 h</th></tr></thead><tbody>"#,
    );
    let rows = [
        ("requests", number(h.requests), number(d.requests)),
        (
            "success rate",
            percent(h.served, h.requests),
            percent(d.served, d.requests),
        ),
        (
            "served after a fallback",
            number(h.fell_back),
            number(d.fell_back),
        ),
        (
            "tokens in + out",
            number(h.tokens_in + h.tokens_out),
            number(d.tokens_in + d.tokens_out),
        ),
    ];
    for (label, a, b) in rows {
        let _ = write!(
            body,
            r#"<tr><th>{label}</th><td class="num">{a}</td><td class="num">{b}</td></tr>"#
        );
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        r#"<div class="charts"><figure>{}<figcaption>last hour, per 5 minutes</figcaption></figure><figure>{}<figcaption>last 24 hours, per hour (UTC)</figcaption></figure></div><p class="legend"><span class="key served"></span>served <span class="key failed"></span>failed</p>"#,
        chart("Requests per 5 minutes over the last hour", hour, 3),
        chart("Requests per hour over the last 24 hours", day, 3),
    );
    reason_table(
        body,
        "Fallbacks by reason",
        "failed attempts before another route answered or the request gave up",
        &hour_reasons.fallbacks,
        &day_reasons.fallbacks,
    );
    reason_table(
        body,
        "Errors by outcome",
        "requests that got an error",
        &hour_reasons.errors,
        &day_reasons.errors,
    );
    body.push_str("</section>");
}

fn reason_table(
    body: &mut String,
    title: &str,
    note: &str,
    hour: &std::collections::BTreeMap<String, u64>,
    day: &std::collections::BTreeMap<String, u64>,
) {
    let _ = write!(body, r#"<h3>{title}</h3>"#);
    if day.is_empty() {
        let _ = write!(body, r#"<p class="muted">None in the last 24 hours.</p>"#);
        return;
    }
    let _ = write!(
        body,
        r#"<table class="compact"><caption class="muted">{note}</caption><thead><tr><th>reason</th><th class="num">last hour</th><th class="num">last 24 h</th></tr></thead><tbody>"#
    );
    let mut ranked: Vec<_> = day.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (reason, n) in ranked {
        let _ = write!(
            body,
            r#"<tr><td><code>{}</code></td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            Esc(reason),
            number(hour.get(reason).copied().unwrap_or(0)),
            number(*n)
        );
    }
    body.push_str("</tbody></table>");
}

fn errors_section(body: &mut String, errors: &[FailedRequest], now: EpochMs) {
    body.push_str(r#"<section><h2>Recent errors</h2>"#);
    if errors.is_empty() {
        body.push_str(r#"<p class="muted">No request has failed.</p></section>"#);
        return;
    }
    body.push_str(
        r#"<table><thead><tr><th>when</th><th>model asked</th><th class="num">status</th><th>outcome</th><th class="num">attempts</th><th>trail</th></tr></thead><tbody>"#,
    );
    for error in errors {
        let _ = write!(
            body,
            r#"<tr><td title="{}">{}</td><td>{}</td><td class="num">{}</td><td><code>{}</code>{}</td><td class="num">{}</td><td class="trail">{}</td></tr>"#,
            utc(error.at_ms),
            ago(error.at_ms, now),
            Esc(&error.requested_model),
            error.status,
            Esc(&error.outcome),
            error
                .error_class
                .as_deref()
                .filter(|class| *class != error.outcome)
                .map(|c| format!(r#" <span class="muted small">{}</span>"#, Esc(c)))
                .unwrap_or_default(),
            error.attempts,
            if error.trail.is_empty() {
                "—".to_string()
            } else {
                escape(&truncate(&error.trail, 200))
            },
        );
    }
    body.push_str("</tbody></table></section>");
}
