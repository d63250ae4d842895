//! Endpoint diagnosis: for each provider with a key, compare its `/models` listing with the catalog.
//! Listed routes are confirmed (and cleared if marked outdated); unlisted ones are probed with a
//! one-token request (an embeddings route with a one-word embedding) — model-not-found ⇒
//! `remove_route`, an answer ⇒ confirmed, anything else (429, timeout, …) ⇒ inconclusive, never a
//! removal. A route whose model the built-in catalog says is off the free tier ⇒ `remove_route`,
//! listed or not (routes the config declares are the user's). A listed chat model the catalog
//! ships as a free default, that is provably free, or that the supervisor calls free with high
//! confidence ⇒ a disabled route and an `add_route` suggestion that waits for a human; one the
//! catalog says is off the free tier never is.

use super::Maintenance;
use super::apply::apply;
use super::classify::{listed_price_is_free, looks_like_chat_model};
use super::facts;
use crate::catalog::{ApiKey, EMBEDDINGS_TAG, Origin, Provider, Route, route_id};
use crate::config::Limits;
use crate::health::HealthState;
use crate::metrics as m;
use crate::providers::body::JsonObject;
use crate::providers::{
    FailureKind, ProviderAdapter, UpstreamCall, adapter_for, list_models, send_chat,
    send_embeddings,
};
use crate::store::{StoreError, SuggestionKind, SuggestionStatus};
use crate::time::EpochMs;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// What one diagnosis run found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiagnosisReport {
    pub providers_checked: Vec<String>,
    /// Providers whose listing could not be read (nothing was concluded about them).
    pub providers_unreachable: Vec<String>,
    pub confirmed: Vec<String>,
    pub inconclusive: Vec<String>,
    /// Suggestions recorded (kind, route).
    pub suggested: Vec<(String, String)>,
    /// Suggestions auto-maintenance applied (kind, route).
    pub applied: Vec<(String, String)>,
}

pub(super) enum Probe {
    Answered,
    NotFound(String),
    Inconclusive(&'static str),
}

impl Maintenance {
    /// One diagnosis pass over every provider that has a key.
    pub async fn diagnose(&self, now: EpochMs) -> Result<DiagnosisReport, StoreError> {
        let mut report = DiagnosisReport::default();
        let routes = self.store.list_routes().await?;
        let outdated: HashSet<String> = self
            .store
            .load_health(now)
            .await?
            .routes
            .into_iter()
            .filter(|h| h.state == HealthState::PotentiallyOutdated)
            .map(|h| h.route_id)
            .collect();
        let rejected: HashSet<String> = self
            .store
            .suggestions(Some(SuggestionStatus::Rejected))
            .await?
            .into_iter()
            .filter(|s| s.kind == SuggestionKind::AddRoute)
            .map(|s| s.route_id)
            .collect();
        let mut next_rank = routes.iter().map(|r| r.rank).max().unwrap_or(0) + 10;
        for provider in self.providers.values().filter(|p| p.usable()) {
            let Some(adapter) = adapter_for(&provider.adapter) else {
                continue;
            };
            let key = provider.keys.first();
            let timeout = Duration::from_millis(self.settings.probe_timeout_ms);
            let listing = match list_models(adapter.as_ref(), &self.http, provider, key, timeout)
                .await
            {
                Ok(listing) => listing,
                Err(failure) => {
                    tracing::info!(provider = %provider.name, reason = %failure.message, "listing unavailable; nothing concluded");
                    report.providers_unreachable.push(provider.name.clone());
                    continue;
                }
            };
            report.providers_checked.push(provider.name.clone());
            let listed: HashMap<String, Value> = listing.into_iter().collect();
            let ours: Vec<&Route> = routes
                .iter()
                .filter(|r| r.provider == provider.name)
                .collect();
            for route in &ours {
                let listed_here = listed.contains_key(&route.upstream_model);
                if let Some(evidence) = facts::retirement(route, listed_here) {
                    self.record(
                        SuggestionKind::RemoveRoute,
                        route,
                        &evidence,
                        now,
                        &mut report,
                    )
                    .await?;
                    continue;
                }
                let answered = if listed_here {
                    true
                } else {
                    match self
                        .probe(adapter.as_ref(), provider, key, route, now)
                        .await
                    {
                        Probe::Answered => true,
                        Probe::NotFound(message) => {
                            let evidence = json!({"listed": false, "probe": "model_not_found", "message": message});
                            self.record(
                                SuggestionKind::RemoveRoute,
                                route,
                                &evidence,
                                now,
                                &mut report,
                            )
                            .await?;
                            continue;
                        }
                        Probe::Inconclusive(why) => {
                            tracing::info!(route = %route.route_id, why, "probe inconclusive; route kept");
                            report.inconclusive.push(route.route_id.clone());
                            continue;
                        }
                    }
                };
                if answered {
                    report.confirmed.push(route.route_id.clone());
                    if outdated.contains(&route.route_id) {
                        let evidence = json!({"listed": listed_here, "confirmed": true});
                        self.record(
                            SuggestionKind::ClearStale,
                            route,
                            &evidence,
                            now,
                            &mut report,
                        )
                        .await?;
                    }
                }
            }
            let known: HashSet<&str> = ours.iter().map(|r| r.upstream_model.as_str()).collect();
            let mut new_models: Vec<(&String, &Value)> = listed
                .iter()
                .filter(|(id, entry)| {
                    !known.contains(id.as_str()) && looks_like_chat_model(id, entry)
                })
                .filter(|(id, _)| !rejected.contains(&route_id(&provider.name, id)))
                .filter(|(id, _)| !facts::is_off_free_tier(&provider.name, id))
                .collect();
            new_models.sort_by(|a, b| a.0.cmp(b.0));
            for (id, entry) in new_models {
                let (route, evidence) = match facts::known_free_route(&provider.name, id, entry) {
                    Some(known) => known,
                    None => {
                        let evidence = match listed_price_is_free(id, entry) {
                            Some(true) => {
                                json!({"listing": entry, "free_because": "the listing says so"})
                            }
                            Some(false) => continue,
                            None => {
                                let verdict = self.verdict(&provider.name, id, entry, now).await;
                                if !(verdict.free_chat_model && verdict.confidence == "high") {
                                    continue;
                                }
                                json!({"listing": entry, "free_because": "the supervisor", "verdict": verdict})
                            }
                        };
                        let rank = next_rank;
                        next_rank += 10;
                        (discovered_route(&provider.name, id, entry, rank), evidence)
                    }
                };
                if self.store.get_route(&route.route_id).await?.is_none() {
                    self.store.upsert_route(&route, now).await?;
                }
                self.store
                    .suggest(
                        SuggestionKind::AddRoute,
                        &route.route_id,
                        &route.provider,
                        &route.upstream_model,
                        &evidence,
                        now,
                    )
                    .await?;
                report
                    .suggested
                    .push(("add_route".into(), route.route_id.clone()));
            }
        }
        self.publish_pending().await?;
        Ok(report)
    }

    /// Records a suggestion and, with auto-maintenance on, applies it (never `add_route`).
    async fn record(
        &self,
        kind: SuggestionKind,
        route: &Route,
        evidence: &Value,
        now: EpochMs,
        report: &mut DiagnosisReport,
    ) -> Result<(), StoreError> {
        self.store
            .suggest(
                kind,
                &route.route_id,
                &route.provider,
                &route.upstream_model,
                evidence,
                now,
            )
            .await?;
        report
            .suggested
            .push((kind.as_str().into(), route.route_id.clone()));
        if self.settings.auto_maintenance
            && kind != SuggestionKind::AddRoute
            && let Some(pending) = self.store.pending_suggestion(kind, &route.route_id).await?
        {
            match apply(&self.store, &pending, "auto", now).await {
                Ok(()) => {
                    tracing::info!(kind = kind.as_str(), route = %route.route_id, %evidence, "auto-maintenance applied");
                    metrics::counter!(m::MAINTENANCE_ACTIONS_TOTAL, "kind" => kind.as_str())
                        .increment(1);
                    report
                        .applied
                        .push((kind.as_str().into(), route.route_id.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, route = %route.route_id, "auto-maintenance could not apply")
                }
            }
        }
        Ok(())
    }

    /// A one-token request (a one-word embedding, for an embeddings route): does the model exist?
    pub(super) async fn probe(
        &self,
        adapter: &dyn ProviderAdapter,
        provider: &Provider,
        key: Option<&ApiKey>,
        route: &Route,
        now: EpochMs,
    ) -> Probe {
        let timeout = Duration::from_millis(self.settings.probe_timeout_ms);
        let model = &route.upstream_model;
        let embeddings = route.has_tag(EMBEDDINGS_TAG);
        let body = if embeddings {
            json!({"model": model, "input": "OK"})
        } else {
            json!({"model": model, "messages": [{"role": "user", "content": "Reply with OK."}], "max_tokens": 1})
        };
        let call = UpstreamCall {
            provider,
            key,
            body: JsonObject::from_value(&body),
            stream: false,
            header_timeout: timeout,
            idle_timeout: timeout,
            max_body_bytes: if embeddings { 4 << 20 } else { 1 << 20 },
            now,
        };
        let answered = if embeddings {
            send_embeddings(adapter, &self.http, call, 1)
                .await
                .map(|_| ())
        } else {
            send_chat(adapter, &self.http, call).await.map(|_| ())
        };
        match answered {
            Ok(()) => Probe::Answered,
            // An empty one-token answer still proves the model is there.
            Err(f) if f.kind == FailureKind::EmptyCompletion => Probe::Answered,
            Err(f) if f.kind == FailureKind::NotFound => Probe::NotFound(f.message),
            Err(f) => Probe::Inconclusive(f.kind.label()),
        }
    }

    /// Sets the pending-suggestions gauge by kind.
    pub async fn publish_pending(&self) -> Result<(), StoreError> {
        let pending = self
            .store
            .suggestions(Some(SuggestionStatus::Pending))
            .await?;
        for kind in [
            SuggestionKind::RemoveRoute,
            SuggestionKind::ClearStale,
            SuggestionKind::AddRoute,
        ] {
            let n = pending.iter().filter(|s| s.kind == kind).count();
            metrics::gauge!(m::SUGGESTIONS_PENDING, "kind" => kind.as_str()).set(n as f64);
        }
        Ok(())
    }
}

/// The disabled route an `add_route` suggestion proposes, filled from what the listing says.
fn discovered_route(provider: &str, id: &str, entry: &Value, rank: i64) -> Route {
    let number = |pointers: &[&str]| {
        pointers
            .iter()
            .find_map(|p| entry.pointer(p).and_then(Value::as_u64))
    };
    let supported: Vec<&str> = entry
        .get("supported_parameters")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut tags = Vec::new();
    if supported.contains(&"tools") {
        tags.push("tools".to_string());
    }
    if supported.contains(&"response_format") || supported.contains(&"structured_outputs") {
        tags.push("json".to_string());
    }
    let image_in = entry
        .pointer("/architecture/input_modalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|x| x == "image"));
    if image_in {
        tags.push("vision".to_string());
    }
    let context = number(&[
        "/context_length",
        "/context_window",
        "/top_provider/context_length",
    ])
    .unwrap_or(8_192);
    if context >= 128_000 {
        tags.push("long-context".to_string());
    }
    Route {
        route_id: route_id(provider, id),
        provider: provider.to_string(),
        upstream_model: id.to_string(),
        display_name: entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string(),
        rank,
        tags,
        aliases: Vec::new(),
        context_window_tokens: context,
        max_output_tokens: number(&["/top_provider/max_completion_tokens", "/max_output_tokens"])
            .unwrap_or(crate::catalog::UNDECLARED_MAX_OUTPUT),
        enabled: false,
        origin: Origin::Discovered,
        limits: Limits::default(),
    }
}
