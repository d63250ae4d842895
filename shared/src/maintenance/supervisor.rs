//! The supervisor pricing check: when a new model's price is unknown, a free route from the catalog
//! is asked for a strict JSON verdict. Only `free_chat_model: true` with `confidence: "high"` lets
//! a suggestion through; anything else — an unparsable answer included — fails closed.

use super::Maintenance;
use crate::catalog::{Provider, Route};
use crate::providers::body::JsonObject;
use crate::providers::{UpstreamCall, UpstreamReply, adapter_for, send_chat};
use crate::store::Verdict;
use crate::time::EpochMs;
use serde_json::{Value, json};
use std::time::Duration;

/// What the supervisor said, once parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub free_chat_model: bool,
    pub confidence: String,
    pub reason: String,
    pub sources: Vec<String>,
}

impl Answer {
    /// The only answer that allows an `add_route` suggestion.
    pub fn allows_suggestion(&self) -> bool {
        self.free_chat_model && self.confidence == "high"
    }
}

/// Parses the strict JSON verdict, tolerating a code fence or words around the object.
pub fn parse_answer(content: &str) -> Option<Answer> {
    let start = content.find('{')?;
    let end = content.rfind('}')?;
    let json: Value = serde_json::from_str(content.get(start..=end)?).ok()?;
    let confidence = json.get("confidence")?.as_str()?.to_ascii_lowercase();
    if !matches!(confidence.as_str(), "high" | "medium" | "low") {
        return None;
    }
    Some(Answer {
        free_chat_model: json.get("free_chat_model")?.as_bool()?,
        confidence,
        reason: json
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(1000)
            .collect(),
        sources: json
            .get("sources")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .take(10)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The route to ask: the configured one, else one tagged `web-search`, else the best text route.
pub fn choose<'a>(
    routes: &'a [Route],
    providers: &'a std::collections::BTreeMap<String, Provider>,
    configured: Option<&str>,
) -> Option<(&'a Route, &'a Provider)> {
    // An embedding model cannot answer a question.
    let usable = |r: &&Route| {
        r.enabled
            && !r.has_tag(crate::catalog::EMBEDDINGS_TAG)
            && providers.get(&r.provider).is_some_and(Provider::usable)
    };
    let with_provider = |r: &'a Route| providers.get(&r.provider).map(|p| (r, p));
    if let Some(name) = configured {
        let named = routes.iter().filter(usable).find(|r| {
            r.route_id == name
                || r.upstream_model == name
                || r.display_name.eq_ignore_ascii_case(name)
        });
        if let Some(route) = named {
            return with_provider(route);
        }
    }
    let mut ranked: Vec<&Route> = routes.iter().filter(usable).collect();
    ranked.sort_by_key(|r| r.rank);
    ranked
        .iter()
        .find(|r| r.has_tag("web-search"))
        .or_else(|| {
            ranked
                .iter()
                .find(|r| !r.has_tag("vision") || r.has_tag("tools"))
        })
        .or(ranked.first())
        .and_then(|r| with_provider(r))
}

fn question(provider: &str, model: &str, entry: &Value) -> String {
    format!(
        "You check LLM provider pricing. Is the model `{model}` offered by the provider `{provider}` a \
         chat (text generation) model that can be used free of charge on that provider's free tier? \
         Its listing entry is: {entry}. Search or recall the provider's current pricing. Answer with ONLY \
         a JSON object, no other text: {{\"free_chat_model\": true or false, \"confidence\": \"high\" or \
         \"medium\" or \"low\", \"reason\": \"one sentence\", \"sources\": [\"URLs\"]}}"
    )
}

impl Maintenance {
    /// The verdict on a model: the cached one while it lasts, else the supervisor's (cached).
    pub async fn verdict(
        &self,
        provider: &str,
        model: &str,
        entry: &Value,
        now: EpochMs,
    ) -> Verdict {
        if let Ok(Some(cached)) = self.store.verdict(provider, model, now).await {
            return cached;
        }
        let verdict = self.ask_supervisor(provider, model, entry, now).await;
        let label = match (verdict.free_chat_model, verdict.confidence.as_str()) {
            (true, "high") => "free_high",
            (false, "high" | "medium" | "low") => "not_free",
            (_, "unparsable") => "unparsable",
            (_, "failed") => "failed",
            _ => "unsure",
        };
        metrics::counter!(crate::metrics::SUPERVISOR_VERDICTS_TOTAL, "verdict" => label)
            .increment(1);
        if let Err(error) = self.store.save_verdict(&verdict).await {
            tracing::warn!(%error, "saving a supervisor verdict failed");
        }
        verdict
    }

    async fn ask_supervisor(
        &self,
        provider: &str,
        model: &str,
        entry: &Value,
        now: EpochMs,
    ) -> Verdict {
        let closed = |asked: &str, confidence: &str, reason: String| Verdict {
            provider: provider.to_string(),
            upstream_model: model.to_string(),
            free_chat_model: false,
            confidence: confidence.to_string(),
            reason,
            sources: Vec::new(),
            asked_route: asked.to_string(),
            created_ms: now,
            expires_ms: now + self.settings.verdict_ttl_s as EpochMs * 1000,
        };
        let routes = match self.store.list_routes().await {
            Ok(routes) => routes,
            Err(error) => {
                return closed(
                    "",
                    "failed",
                    format!("the catalog could not be read: {error}"),
                );
            }
        };
        let Some((route, supervisor)) = choose(
            &routes,
            &self.providers,
            self.settings.supervisor_model.as_deref(),
        ) else {
            return closed("", "failed", "no route can act as supervisor".into());
        };
        let Some(adapter) = adapter_for(&supervisor.adapter) else {
            return closed(
                &route.route_id,
                "failed",
                "the supervisor's adapter is unknown".into(),
            );
        };
        let timeout = Duration::from_millis(self.settings.probe_timeout_ms);
        let call = UpstreamCall {
            provider: supervisor,
            key: supervisor.keys.first(),
            body: JsonObject::from_value(&json!({
                "model": route.upstream_model,
                "messages": [{"role": "user", "content": question(provider, model, entry)}],
                "temperature": 0,
                "max_tokens": 400,
            })),
            stream: false,
            header_timeout: timeout * 3,
            idle_timeout: timeout,
            max_body_bytes: 1 << 20,
            now,
        };
        let content = match send_chat(adapter.as_ref(), &self.http, call).await {
            Ok(UpstreamReply::Complete { info, .. }) => info.content,
            Ok(UpstreamReply::Stream { .. }) => String::new(),
            Err(failure) => {
                return closed(
                    &route.route_id,
                    "failed",
                    format!("the supervisor did not answer: {}", failure.message),
                );
            }
        };
        match parse_answer(&content) {
            Some(answer) => Verdict {
                free_chat_model: answer.free_chat_model,
                confidence: answer.confidence,
                reason: answer.reason,
                sources: answer.sources,
                ..closed(&route.route_id, "", String::new())
            },
            None => closed(
                &route.route_id,
                "unparsable",
                format!(
                    "unparsable answer: {}",
                    content.chars().take(300).collect::<String>()
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strict_json_with_known_fields_parses() {
        let ok = parse_answer("```json\n{\"free_chat_model\": true, \"confidence\": \"High\", \"reason\": \"listed free\", \"sources\": [\"https://x\"]}\n```").unwrap();
        assert!(ok.allows_suggestion());
        assert_eq!(ok.sources, vec!["https://x"]);
        let medium = parse_answer(r#"{"free_chat_model": true, "confidence": "medium"}"#).unwrap();
        assert!(!medium.allows_suggestion());
        for bad in [
            "Yes, it is free.",
            r#"{"free_chat_model": "yes", "confidence": "high"}"#,
            r#"{"free_chat_model": true, "confidence": "certain"}"#,
            r#"{"free_chat_model": true}"#,
            "{ broken",
        ] {
            assert!(parse_answer(bad).is_none(), "{bad}");
        }
    }
}
