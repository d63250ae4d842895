//! Applying a suggestion: what `remove_route`, `clear_stale` and `add_route` do to the catalog.
//! Auto-maintenance and a human (adminctl, the admin API) go through the same function.

use crate::store::{Store, StoreError, Suggestion, SuggestionKind, SuggestionStatus};
use crate::time::EpochMs;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("suggestion {0} is not pending")]
    NotPending(i64),
    #[error("the route {0} no longer exists")]
    RouteGone(String),
}

/// Carries a pending suggestion out and marks it applied by `who` (`auto` or `human`).
pub async fn apply(
    store: &Store,
    suggestion: &Suggestion,
    who: &str,
    now: EpochMs,
) -> Result<(), ApplyError> {
    if suggestion.status != SuggestionStatus::Pending {
        return Err(ApplyError::NotPending(suggestion.id));
    }
    match suggestion.kind {
        SuggestionKind::RemoveRoute => {
            store.delete_route(&suggestion.route_id).await?;
        }
        SuggestionKind::ClearStale => {
            store.reset_health(Some(&suggestion.route_id)).await?;
        }
        SuggestionKind::AddRoute => {
            if !store
                .set_route_enabled(&suggestion.route_id, true, now)
                .await?
            {
                return Err(ApplyError::RouteGone(suggestion.route_id.clone()));
            }
        }
    }
    if !store
        .decide_suggestion(suggestion.id, SuggestionStatus::Applied, who, now)
        .await?
    {
        return Err(ApplyError::NotPending(suggestion.id));
    }
    Ok(())
}

/// A human accepts the pending `add_route` for a route (`adminctl models accept ROUTE`).
pub async fn accept_route(
    store: &Store,
    route_id: &str,
    now: EpochMs,
) -> Result<Suggestion, ApplyError> {
    let suggestion = store
        .pending_suggestion(SuggestionKind::AddRoute, route_id)
        .await?
        .ok_or_else(|| ApplyError::RouteGone(route_id.to_string()))?;
    apply(store, &suggestion, "human", now).await?;
    Ok(suggestion)
}

/// A human rejects a pending `add_route`: the suggestion is closed and its disabled route removed.
pub async fn reject_route(
    store: &Store,
    route_id: &str,
    now: EpochMs,
) -> Result<Suggestion, ApplyError> {
    let suggestion = store
        .pending_suggestion(SuggestionKind::AddRoute, route_id)
        .await?
        .ok_or_else(|| ApplyError::RouteGone(route_id.to_string()))?;
    store
        .decide_suggestion(suggestion.id, SuggestionStatus::Rejected, "human", now)
        .await?;
    if let Some(route) = store.get_route(route_id).await?
        && !route.enabled
    {
        store.delete_route(route_id).await?;
    }
    Ok(suggestion)
}

/// Rejects a pending suggestion: a discovered route is removed (as `reject_route` does); any other
/// suggestion is only closed.
pub async fn reject(
    store: &Store,
    suggestion: &Suggestion,
    who: &str,
    now: EpochMs,
) -> Result<(), ApplyError> {
    if suggestion.kind == SuggestionKind::AddRoute {
        reject_route(store, &suggestion.route_id, now).await?;
        return Ok(());
    }
    if !store
        .decide_suggestion(suggestion.id, SuggestionStatus::Rejected, who, now)
        .await?
    {
        return Err(ApplyError::NotPending(suggestion.id));
    }
    Ok(())
}
