//! The runtime's background loops: what another process changed in the store (the catalog, a
//! health reset) is reloaded as soon as PostgreSQL announces it, else within
//! `catalog.reload_interval_ms`; the quota ledger is pruned.

use crate::config::Settings;
use crate::health::HealthBoard;
use crate::metrics as m;
use crate::routing::Engine;
use crate::shutdown::CancellationToken;
use crate::store::Store;
use crate::time::now_ms;
use std::sync::Arc;
use std::time::Duration;

/// Polls the version counters (and wakes on the store's announcements) and reloads what another
/// process changed.
pub(super) async fn watch_catalog(
    engine: Arc<Engine>,
    store: Store,
    settings: Settings,
    token: CancellationToken,
) {
    let every = Duration::from_millis(settings.catalog.reload_interval_ms.max(50));
    let max_cooldown_ms = settings.routing.max_cooldown_s.saturating_mul(1000);
    let mut changes = store.changes();
    let mut seen = store.versions().await.ok();
    loop {
        let announced = tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => false,
            _ = changes.announced() => true,
        };
        if announced {
            // Another host's cooldowns and invalid keys, as soon as they are written.
            match store.load_health(now_ms()).await {
                Ok(records) => engine.health.absorb(
                    records.routes,
                    records.keys,
                    records.invalid_keys,
                    now_ms(),
                ),
                Err(error) => tracing::warn!(%error, "reading other hosts' health failed"),
            }
        }
        let Ok(now) = store.versions().await else {
            continue;
        };
        if seen.is_some_and(|s| s.catalog == now.catalog)
            && seen.is_some_and(|s| s.health == now.health)
        {
            continue;
        }
        if seen.is_none_or(|s| s.catalog != now.catalog) {
            match engine.catalog.reload(&store).await {
                Ok(snapshot) => {
                    metrics::counter!(m::CATALOG_RELOADS_TOTAL).increment(1);
                    tracing::info!(version = snapshot.version, "catalog reloaded");
                }
                Err(error) => {
                    tracing::warn!(%error, "catalog reload failed");
                    continue;
                }
            }
        }
        if seen.is_some_and(|s| s.health != now.health) {
            match store.load_health(now_ms()).await {
                Ok(records) => {
                    engine.health.replace(HealthBoard::from_records(
                        records.routes,
                        records.keys,
                        records.invalid_keys,
                        now_ms(),
                        max_cooldown_ms,
                    ));
                    tracing::info!("route health reloaded after an outside reset");
                }
                Err(error) => {
                    tracing::warn!(%error, "health reload failed");
                    continue;
                }
            }
        }
        seen = Some(now);
    }
}

/// Settles leases crashed processes left behind and drops ledger rows no window counts any more,
/// once a minute (in bounded batches).
pub(super) async fn prune_ledger(engine: Arc<Engine>, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        if let Err(error) = engine.ledger.prune(now_ms()).await {
            tracing::warn!(%error, "pruning the quota ledger failed");
        }
    }
}
