//! Model names on the Messages face: Claude names mapped to what the gateway serves
//! (`[anthropic] models`), and `/v1/models` in Anthropic's list shape.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a Messages request's `model` becomes for the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedModel {
    /// An `auto` mode, a route name, or the name as sent.
    pub model: String,
    /// The client named a Claude model: no route serves it, so it is never strict.
    pub claude: bool,
}

/// Maps `requested` through `tiers` (`[anthropic] models`): a key equal to the name wins, else,
/// for a `claude-*` name, the longest key the name contains (`haiku` for
/// `claude-haiku-4-5-20251001`); an unmapped Claude name is `auto`. Other names pass unchanged.
pub fn resolve_model(requested: &str, tiers: &BTreeMap<String, String>) -> ResolvedModel {
    let requested = requested.trim();
    let lower = requested.to_lowercase();
    let claude = lower.starts_with("claude");
    let exact = tiers
        .iter()
        .find(|(key, _)| key.to_lowercase() == lower)
        .map(|(_, target)| target);
    let by_tier = || {
        tiers
            .iter()
            .filter(|(key, _)| !key.is_empty() && lower.contains(&key.to_lowercase()))
            .max_by_key(|(key, _)| key.len())
            .map(|(_, target)| target)
    };
    let model = match exact {
        Some(target) => target.clone(),
        None if claude => by_tier().cloned().unwrap_or_else(|| "auto".to_string()),
        None if requested.is_empty() => "auto".to_string(),
        None => requested.to_string(),
    };
    ResolvedModel { model, claude }
}

/// One entry of the model list.
pub struct ListedModel<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    pub max_input_tokens: Option<u64>,
    pub max_tokens: Option<u64>,
}

/// Epoch: the release date of a route's model is not known (Anthropic's documented placeholder).
const UNKNOWN_RELEASE: &str = "1970-01-01T00:00:00Z";

/// `GET /v1/models` as Anthropic answers it: `data` of `type: "model"`, `has_more`, `first_id`,
/// `last_id` (one page holds everything).
pub fn model_list<'a>(models: impl IntoIterator<Item = ListedModel<'a>>) -> Value {
    let data: Vec<Value> = models
        .into_iter()
        .map(|m| {
            json!({
                "type": "model",
                "id": m.id,
                "display_name": m.display_name,
                "created_at": UNKNOWN_RELEASE,
                "lifecycle": "active",
                "max_input_tokens": m.max_input_tokens,
                "max_tokens": m.max_tokens,
            })
        })
        .collect();
    let first = data.first().map(|m| m["id"].clone());
    let last = data.last().map(|m| m["id"].clone());
    json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> BTreeMap<String, String> {
        [
            ("haiku", "auto-fast"),
            ("claude-opus-4-1", "lab/big-model"),
            ("sonnet", "auto-balanced"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn claude_names_map_by_tier_and_fall_to_auto_when_unmapped() {
        let resolved = |name: &str| resolve_model(name, &tiers());
        assert_eq!(
            resolved("claude-haiku-4-5-20251001"),
            ResolvedModel {
                model: "auto-fast".into(),
                claude: true
            }
        );
        assert_eq!(resolved("claude-3-5-sonnet-latest").model, "auto-balanced");
        assert_eq!(resolved("claude-opus-4-1").model, "lab/big-model");
        assert_eq!(resolved("Claude-Opus-4-1").model, "lab/big-model");
        assert_eq!(resolved("claude-opus-4-5").model, "auto");
        assert!(resolved("claude-opus-4-5").claude);
    }

    #[test]
    fn other_names_pass_unchanged_and_empty_means_auto() {
        let resolved = |name: &str| resolve_model(name, &tiers());
        assert_eq!(
            resolved("lab/sim-model"),
            ResolvedModel {
                model: "lab/sim-model".into(),
                claude: false
            }
        );
        assert_eq!(resolved("auto-fast").model, "auto-fast");
        assert_eq!(resolved("  ").model, "auto");
        assert_eq!(resolved("haiku").model, "auto-fast", "a tier name alone");
    }

    #[test]
    fn the_list_has_anthropics_page_shape() {
        let list = model_list([
            ListedModel {
                id: "auto",
                display_name: "auto",
                max_input_tokens: None,
                max_tokens: None,
            },
            ListedModel {
                id: "lab/m",
                display_name: "M",
                max_input_tokens: Some(32768),
                max_tokens: Some(4096),
            },
        ]);
        assert_eq!(list["has_more"], false);
        assert_eq!(list["first_id"], "auto");
        assert_eq!(list["last_id"], "lab/m");
        assert_eq!(list["data"][1]["type"], "model");
        assert_eq!(list["data"][1]["created_at"], UNKNOWN_RELEASE);
        assert_eq!(list["data"][1]["max_input_tokens"], 32768);
    }
}
