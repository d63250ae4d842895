//! The live catalog: the current snapshot behind a lock, reloaded from the store when its version moves.

use super::{CatalogSnapshot, Provider, Route, RouteSeed, builtin, route::Origin};
use crate::config::Settings;
use crate::store::{Store, StoreError};
use crate::time::EpochMs;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The snapshot every request reads; swapped whole on reload.
pub struct LiveCatalog {
    current: RwLock<Arc<CatalogSnapshot>>,
    providers: BTreeMap<String, Provider>,
}

impl LiveCatalog {
    /// Loads the routes from the store with the resolved providers.
    pub async fn load(
        store: &Store,
        providers: BTreeMap<String, Provider>,
    ) -> Result<Self, StoreError> {
        let snapshot = Self::read(store, &providers).await?;
        Ok(Self {
            current: RwLock::new(Arc::new(snapshot)),
            providers,
        })
    }

    async fn read(
        store: &Store,
        providers: &BTreeMap<String, Provider>,
    ) -> Result<CatalogSnapshot, StoreError> {
        let version = store.versions().await?.catalog;
        let routes = store.list_routes().await?;
        Ok(CatalogSnapshot::new(version, routes, providers.clone()))
    }

    pub fn snapshot(&self) -> Arc<CatalogSnapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the routes; returns the new snapshot.
    pub async fn reload(&self, store: &Store) -> Result<Arc<CatalogSnapshot>, StoreError> {
        let snapshot = Arc::new(Self::read(store, &self.providers).await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = snapshot.clone();
        Ok(snapshot)
    }
}

/// Brings the database in line with the configuration at start: the built-in defaults seeded once
/// into a new file (when `catalog.defaults`), and the routes declared in the config upserted (origin `manual`).
pub async fn bootstrap(store: &Store, settings: &Settings, now: EpochMs) -> Result<(), StoreError> {
    if settings.catalog.defaults {
        let routes = builtin::registry().ranked_routes_for(&settings.providers);
        store.seed_defaults_once(&routes, now).await?;
    }
    for (i, declared) in settings.routes.iter().enumerate() {
        let seed = RouteSeed {
            provider: declared.provider.clone(),
            model: declared.model.clone(),
            display_name: declared.display_name.clone(),
            rank: declared.rank,
            aliases: declared.aliases.clone(),
            context_window: declared.context_window,
            max_output: declared.max_output,
            tags: declared.tags.clone(),
            limits: declared.limits,
            ..RouteSeed::default()
        };
        let route = seed.into_route(
            Origin::Manual,
            declared.enabled.unwrap_or(true),
            100 + i as i64,
        );
        // The file declares what the route is; rank and enabled are the user's to change later
        // (adminctl, the admin API) and are only taken from the file when the route is new.
        let route = match store.get_route(&route.route_id).await? {
            Some(existing) => Route {
                rank: existing.rank,
                enabled: existing.enabled,
                ..route
            },
            None => route,
        };
        if store.get_route(&route.route_id).await?.as_ref() != Some(&route) {
            store.upsert_route(&route, now).await?;
        }
    }
    Ok(())
}
