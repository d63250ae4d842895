//! The engine assembled and kept running, for every program that routes: the gateway (its HTTP
//! face) and [`crate::Router`] (a Rust program's). Opens the store, brings the catalog in line with
//! the config, loads health, and runs the background work routing needs — the store writer, the
//! quota ledger's keeper, the catalog and health watcher, the ledger pruner — until
//! [`Runtime::shutdown`], which settles every lease and flushes the writer.

#![warn(missing_docs)]

mod watch;

use crate::catalog::live::{LiveCatalog, bootstrap};
use crate::catalog::{Provider, resolve_providers};
use crate::config::{ConfigSource, Settings};
use crate::health::HealthBoard;
use crate::providers::{self, HttpClientError};
use crate::quota::Ledger;
use crate::routing::Engine;
use crate::shutdown::CancellationToken;
use crate::store::{Store, StoreError, spawn_writer};
use crate::time::now_ms;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Why the engine could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The SQLite file could not be opened, migrated or read.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// The HTTP client for upstream calls could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] HttpClientError),
}

/// A running engine and the background work it needs.
pub struct Runtime {
    /// The routing engine (catalog snapshot, health board, adapters, writer, ledger).
    pub engine: Arc<Engine>,
    /// The store the engine writes to (shared with any other process on the same file).
    pub store: Store,
    /// Providers as configured, keys resolved.
    pub providers: Arc<BTreeMap<String, Provider>>,
    /// The settings it was started with.
    pub settings: Settings,
    background: CancellationToken,
    tasks: Mutex<Option<Tasks>>,
}

struct Tasks {
    keeper: JoinHandle<()>,
    writer: JoinHandle<()>,
    watcher: JoinHandle<()>,
    pruner: JoinHandle<()>,
}

impl Runtime {
    /// Opens the store named by `settings.storage.database`, seeds or updates the catalog, loads
    /// health and starts the background tasks. Keys come from `source`.
    pub async fn start(settings: &Settings, source: &ConfigSource) -> Result<Self, RuntimeError> {
        let store = Store::open(
            &settings.storage.database,
            Duration::from_millis(settings.storage.busy_timeout_ms),
        )
        .await?;
        let now = now_ms();
        bootstrap(&store, settings, now).await?;
        let providers = resolve_providers(settings, source);
        let catalog = Arc::new(LiveCatalog::load(&store, providers.clone()).await?);
        let records = store.load_health(now).await?;
        let health = Arc::new(HealthBoard::from_records(
            records.routes,
            records.keys,
            records.invalid_keys,
            now,
            settings.routing.max_cooldown_s.saturating_mul(1000),
        ));

        let background = CancellationToken::new();
        let (writer, writer_task) = spawn_writer(
            store.clone(),
            Duration::from_millis(settings.storage.log_flush_ms),
            background.clone(),
        );
        let http_client =
            providers::http_client(Duration::from_millis(settings.routing.connect_timeout_ms))?;
        let ledger = Ledger::new(store.clone(), settings.quota.clone());
        ledger.watch_keys(providers.values());
        let keeper = ledger.spawn_keeper();
        let engine = Arc::new(Engine::new(
            catalog,
            health,
            writer,
            ledger,
            settings.routing.clone(),
            http_client,
        ));
        let watcher = tokio::spawn(watch::watch_catalog(
            engine.clone(),
            store.clone(),
            settings.clone(),
            background.clone(),
        ));
        let pruner = tokio::spawn(watch::prune_ledger(engine.clone(), background.clone()));
        Ok(Self {
            engine,
            store,
            providers: Arc::new(providers),
            settings: settings.clone(),
            background,
            tasks: Mutex::new(Some(Tasks {
                keeper,
                writer: writer_task,
                watcher,
                pruner,
            })),
        })
    }

    /// Ends the background work, in order: every lease is settled and the ledger's last writes
    /// land (within `quota.shutdown_wait_ms`), then the watchers stop and the writer flushes the
    /// log. Requests still running should have ended first. A second call does nothing.
    pub async fn shutdown(&self) {
        let Some(tasks) = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let wait = Duration::from_millis(self.settings.quota.shutdown_wait_ms);
        self.engine.ledger.shutdown(wait).await;
        let _ = tasks.keeper.await;
        self.background.cancel();
        let _ = tasks.watcher.await;
        let _ = tasks.pruner.await;
        let _ = tasks.writer.await;
    }
}

/// A runtime dropped without [`Runtime::shutdown`] still stops its watchers, and the writer
/// flushes what it holds; its unsettled leases count as spent until they expire.
impl Drop for Runtime {
    fn drop(&mut self) {
        self.background.cancel();
    }
}
