//! The same-model rule: what `auto` and a named model resolve to, that fallback stays within the
//! model's providers, and that chat and embeddings never meet.

use super::*;
use crate::catalog::{ApiKey, CatalogSnapshot, Origin, Provider, Route, RouteSeed};
use crate::config::Secret;
use crate::health::HealthBoard;
use crate::routing::RoutingError;
use crate::routing::plan::{PlanInput, plan};
use std::collections::BTreeMap;

const NOW: i64 = 1_000_000;

fn route(provider: &str, model: &str, rank: i64, aliases: &[&str], tags: &[&str]) -> Route {
    RouteSeed {
        provider: provider.into(),
        model: model.into(),
        rank: Some(rank),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        context_window: Some(8192),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..RouteSeed::default()
    }
    .into_route(Origin::Manual, true, 0)
}

fn provider(name: &str, keyed: bool) -> Provider {
    let mut provider = Provider::keyless(name, "http://127.0.0.1:9/v1");
    provider.keyless = false;
    provider.key_env = vec![format!("{}_API_KEY", name.to_uppercase())];
    if keyed {
        provider.keys = vec![ApiKey::new(Secret::new(format!("sk-{name}")))];
    }
    provider
}

/// `bge` on pa (rank 2) and pb (rank 4), `gem` on pc (rank 3, other model), a chat route on pd
/// (rank 1, best of all), and `nomic` on pe whose provider has no key (rank 5).
fn catalog(edit: impl FnOnce(&mut Vec<Route>)) -> CatalogSnapshot {
    let mut routes = vec![
        route("pd", "chat-model", 1, &["chatty"], &["tools"]),
        route("pa", "baai/bge-m3", 2, &["bge-m3"], &["embeddings"]),
        route(
            "pc",
            "gemini-embedding-001",
            3,
            &[],
            &["embeddings", "dimensions"],
        ),
        route("pb", "@cf/baai/bge-m3", 4, &["bge-m3"], &["embeddings"]),
        route("pe", "nomic-embed-text", 5, &["nomic"], &["embeddings"]),
    ];
    edit(&mut routes);
    let providers: BTreeMap<String, Provider> = ["pa", "pb", "pc", "pd"]
        .into_iter()
        .map(|name| (name.to_string(), provider(name, true)))
        .chain([("pe".to_string(), provider("pe", false))])
        .collect();
    CatalogSnapshot::new(1, routes, providers)
}

fn ids(model: &EmbeddingModel) -> Vec<&str> {
    model.routes.iter().map(|r| r.route_id.as_str()).collect()
}

fn ready(snapshot: &CatalogSnapshot, health: &HealthBoard, model: &EmbeddingModel) -> Vec<String> {
    candidates(snapshot, health, model, false, NOW)
        .unwrap()
        .into_iter()
        .map(|c| c.route.route_id.clone())
        .collect()
}

#[test]
fn auto_is_the_best_ranked_embeddings_routes_model_on_every_provider_serving_it() {
    let snapshot = catalog(|_| {});
    let model = resolve(&snapshot, "auto", None).unwrap();
    assert_eq!(model.name, "bge-m3");
    assert_eq!(ids(&model), vec!["pa/baai/bge-m3", "pb/@cf/baai/bge-m3"]);
    for name in ["", "auto-fast", "auto-balanced"] {
        assert_eq!(
            ids(&resolve(&snapshot, name, None).unwrap()),
            ids(&model),
            "{name:?}"
        );
    }
}

#[test]
fn the_default_setting_names_the_model_auto_means() {
    let snapshot = catalog(|_| {});
    let model = resolve(&snapshot, "auto", Some("gemini-embedding-001")).unwrap();
    assert_eq!(ids(&model), vec!["pc/gemini-embedding-001"]);
    assert_eq!(
        ids(&resolve(&snapshot, "auto", Some(" auto ")).unwrap()),
        vec!["pa/baai/bge-m3", "pb/@cf/baai/bge-m3"],
        "a setting of auto is no setting"
    );
    let missing = resolve(&snapshot, "auto", Some("text-embedding-3-small")).unwrap_err();
    assert!(matches!(
        missing,
        EmbeddingsError::DefaultModelMissing { .. }
    ));
    assert_eq!(missing.status(), 503);
    let chat = resolve(&snapshot, "", Some("chatty")).unwrap_err();
    assert!(matches!(chat, EmbeddingsError::DefaultModelMissing { .. }));
    assert_eq!(
        ids(&resolve(&snapshot, "gemini-embedding-001", Some("bge-m3")).unwrap()),
        vec!["pc/gemini-embedding-001"],
        "a named model is not the default"
    );
}

#[test]
fn a_named_model_is_every_route_sharing_its_alias_or_upstream_id_and_nothing_else() {
    let snapshot = catalog(|routes| {
        // The same model under a user's second provider, named only by its upstream id.
        routes.push(route("pa", "@cf/baai/bge-m3", 6, &[], &["embeddings"]));
    });
    for name in ["bge-m3", "BGE-M3", "pb/@cf/baai/bge-m3", "baai/bge-m3"] {
        let model = resolve(&snapshot, name, None).unwrap();
        assert_eq!(
            ids(&model),
            vec!["pa/baai/bge-m3", "pb/@cf/baai/bge-m3", "pa/@cf/baai/bge-m3"],
            "{name}"
        );
    }
    let gem = resolve(&snapshot, "pc/gemini-embedding-001", None).unwrap();
    assert_eq!(ids(&gem), vec!["pc/gemini-embedding-001"]);
    assert_eq!(gem.name, "gemini-embedding-001");
}

#[test]
fn unknown_and_chat_names_are_refused_listing_the_embedding_models() {
    let snapshot = catalog(|_| {});
    let unknown = resolve(&snapshot, "text-embedding-3-small", None).unwrap_err();
    assert_eq!(
        (unknown.status(), unknown.kind(), unknown.param()),
        (404, "model_not_found", Some("model"))
    );
    let message = unknown.to_string();
    assert!(
        message.contains("bge-m3") && message.contains("gemini-embedding-001"),
        "{message}"
    );
    assert!(
        !message.contains("nomic"),
        "a model no provider can serve is not offered: {message}"
    );
    let chat = resolve(&snapshot, "chatty", None).unwrap_err();
    assert!(
        matches!(chat, EmbeddingsError::NotAnEmbeddingModel { .. }),
        "{chat:?}"
    );
    assert!(chat.to_string().contains("chat model"));
}

#[test]
fn fallback_skips_a_resting_provider_of_the_model_but_never_reaches_another_model() {
    let snapshot = catalog(|_| {});
    let health = HealthBoard::default();
    let model = resolve(&snapshot, "bge-m3", None).unwrap();
    assert_eq!(
        ready(&snapshot, &health, &model),
        vec!["pa/baai/bge-m3", "pb/@cf/baai/bge-m3"]
    );
    let key_a = ApiKey::new(Secret::new("sk-pa")).id;
    health.cool_key("pa", &key_a, "pa/baai/bge-m3", NOW + 30_000, "429", NOW);
    assert_eq!(
        ready(&snapshot, &health, &model),
        vec!["pb/@cf/baai/bge-m3"]
    );
    health.cool_route("pb/@cf/baai/bge-m3", NOW + 10_000, "outage", NOW);
    match candidates(&snapshot, &health, &model, false, NOW).unwrap_err() {
        EmbeddingsError::Routing {
            model,
            error: RoutingError::QuotaExhausted { retry_after_ms, .. },
        } => {
            assert_eq!(model, "bge-m3");
            assert_eq!(retry_after_ms, 10_000, "the soonest of the model's returns");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_model_whose_routes_cannot_be_called_is_unavailable_naming_what_to_set() {
    let snapshot = catalog(|routes| routes[1].enabled = false);
    let health = HealthBoard::default();
    let nomic = resolve(&snapshot, "nomic", None).unwrap();
    let error = candidates(&snapshot, &health, &nomic, false, NOW).unwrap_err();
    assert_eq!((error.status(), error.kind()), (503, "model_unavailable"));
    assert!(error.to_string().contains("PE_API_KEY"), "{error}");
    // A named model keeps its other provider; `auto` follows the best-ranked enabled route,
    // which is now another model's (why the README says to set routing.default_embedding_model).
    let named = resolve(&snapshot, "bge-m3", None).unwrap();
    assert_eq!(
        ready(&snapshot, &health, &named),
        vec!["pb/@cf/baai/bge-m3"]
    );
    let auto = resolve(&snapshot, "auto", None).unwrap();
    assert_eq!(ids(&auto), vec!["pc/gemini-embedding-001"]);
}

#[test]
fn dimensions_need_a_route_tagged_for_them() {
    let snapshot = catalog(|_| {});
    let health = HealthBoard::default();
    let bge = resolve(&snapshot, "bge-m3", None).unwrap();
    let error = candidates(&snapshot, &health, &bge, true, NOW).unwrap_err();
    assert_eq!((error.status(), error.param()), (400, Some("dimensions")));
    let gem = resolve(&snapshot, "gemini-embedding-001", None).unwrap();
    assert_eq!(
        candidates(&snapshot, &health, &gem, true, NOW)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn chat_requests_never_plan_an_embeddings_route() {
    let snapshot = catalog(|routes| routes[0].enabled = false);
    let health = HealthBoard::default();
    let input = |model: &'static str, strict: bool| PlanInput {
        model,
        strict,
        prompt_tokens: 10,
        max_tokens: None,
        required_tags: &[],
        excluded: &[],
    };
    for model in ["auto", "bge-m3", "pa/baai/bge-m3"] {
        let error = plan(&snapshot, &health, &input(model, false), NOW).unwrap_err();
        assert!(
            matches!(&error, RoutingError::NoCapableRoute { tags } if tags == &["chat"]),
            "{model}: {error:?}"
        );
    }
    let snapshot = catalog(|_| {});
    let served = plan(&snapshot, &health, &input("bge-m3", false), NOW).unwrap();
    let planned: Vec<&str> = served
        .candidates
        .iter()
        .map(|c| c.route.route_id.as_str())
        .collect();
    assert_eq!(planned, vec!["pd/chat-model"]);
}

#[test]
fn the_built_in_embedding_routes_carry_no_chat_capability() {
    let registry = crate::catalog::builtin::registry();
    let embedding: Vec<_> = registry
        .routes
        .iter()
        .filter(|r| r.tags.iter().any(|t| t == "embeddings"))
        .collect();
    assert!(
        embedding.len() >= 6,
        "the free embedding tiers are in the default catalog"
    );
    for seed in embedding {
        for tag in &seed.tags {
            assert!(
                ["embeddings", "dimensions", "long-context"].contains(&tag.as_str()),
                "{}: {tag}",
                seed.model
            );
        }
    }
}
