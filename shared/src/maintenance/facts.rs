//! What the built-in catalog knows that a provider's listing does not say: which listed models are
//! free-tier defaults (with their limits and ranking), and which are shut down or off the free tier.

use crate::catalog::builtin::registry;
use crate::catalog::{Origin, Route};
use serde_json::{Value, json};

/// The route a listed model the catalog ships as a free default gets, disabled until accepted, with
/// the evidence for the suggestion; `None` when the catalog does not know the model.
pub(super) fn known_free_route(
    provider: &str,
    model: &str,
    listing: &Value,
) -> Option<(Route, Value)> {
    let route = registry().default_route(provider, model)?;
    let evidence = json!({
        "listing": listing,
        "free_because": "the built-in catalog lists it on the free tier",
        "catalog_rank": route.rank,
    });
    Some((
        Route {
            enabled: false,
            origin: Origin::Discovered,
            ..route
        },
        evidence,
    ))
}

/// Whether the catalog says this model is no longer free (never proposed, whatever a listing or
/// the supervisor says).
pub(super) fn is_off_free_tier(provider: &str, model: &str) -> bool {
    registry().off_free_tier(provider, model).is_some()
}

/// The evidence for removing `route` because its model is off the free tier; `None` when it is
/// not, or when the user declared the route in the config (a paid key, say: theirs to keep).
pub(super) fn retirement(route: &Route, listed: bool) -> Option<Value> {
    if route.origin == Origin::Manual {
        return None;
    }
    let gone = registry().off_free_tier(&route.provider, &route.upstream_model)?;
    Some(json!({
        "listed": listed,
        "off_free_tier": gone.why,
        "source": gone.source,
    }))
}
