//! What a route's provider does with prompts, as its published terms say: a provider flag
//! (`trains_on_prompts`, with its source, in the catalog or `[providers.X]`) and a route tag
//! (`trains-on-prompts`, for one model or endpoint whose terms differ from its provider's, such
//! as an OpenRouter free endpoint that logs prompts). Requests can keep such routes out
//! (`routing.exclude`, `X-FreeRouter-Exclude`).

use super::{Provider, Route};

/// The property (and route tag) of routes whose provider may train on, or keep, prompts.
pub const TRAINS_ON_PROMPTS: &str = "trains-on-prompts";

/// Whether prompts sent through this route may be used for training, by its provider's terms or
/// its own tag.
pub fn trains_on_prompts(route: &Route, provider: &Provider) -> bool {
    provider.trains_on_prompts || route.has_tag(TRAINS_ON_PROMPTS)
}

/// Whether `route` has the property `name` that a request may exclude: `trains-on-prompts` (the
/// provider's flag or the route's tag), else any of its tags.
pub fn has_property(route: &Route, provider: &Provider, name: &str) -> bool {
    if name == TRAINS_ON_PROMPTS {
        trains_on_prompts(route, provider)
    } else {
        route.has_tag(name)
    }
}

/// `X-FreeRouter-Exclude: trains-on-prompts, vision` → the names, lowercased, without blanks.
pub fn parse_exclude(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .take(16)
        .map(|name| name.chars().take(64).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Origin, RouteSeed};

    fn route(tags: &[&str]) -> Route {
        RouteSeed {
            provider: "p".into(),
            model: "m".into(),
            rank: Some(1),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..RouteSeed::default()
        }
        .into_route(Origin::Manual, true, 1)
    }

    #[test]
    fn a_route_trains_on_prompts_by_its_provider_s_terms_or_its_own_tag() {
        let plain = Provider::keyless("p", "http://127.0.0.1:9/v1");
        let training = Provider {
            trains_on_prompts: true,
            ..plain.clone()
        };
        assert!(trains_on_prompts(&route(&[]), &training));
        assert!(trains_on_prompts(&route(&[TRAINS_ON_PROMPTS]), &plain));
        assert!(!trains_on_prompts(&route(&["tools"]), &plain));
        assert!(has_property(&route(&["vision"]), &plain, "vision"));
    }

    #[test]
    fn the_exclude_header_is_a_comma_list_in_any_case() {
        assert_eq!(
            parse_exclude(" Trains-On-Prompts , ,vision"),
            vec!["trains-on-prompts", "vision"]
        );
        assert!(parse_exclude("").is_empty());
    }
}
