//! Startup: open the store, bring the catalog in line with the config, load health, start the
//! background tasks (store writer, catalog watcher, ledger keeper and pruner), bind, and serve
//! until cancelled; then drain, settle the quota ledger, and flush.

use crate::http;
use crate::http::browser::Perimeter;
use crate::limits::{AuthThrottle, ClientLimiter, ConcurrencyLimiter};
use crate::serve::{ServeOptions, serve};
use crate::state::{AppState, Inner};
use freerouter::catalog::live::{LiveCatalog, bootstrap};
use freerouter::catalog::resolve_providers;
use freerouter::config::{ConfigSource, Settings};
use freerouter::health::HealthBoard;
use freerouter::quota::Ledger;
use freerouter::routing::Engine;
use freerouter::routing::embeddings::{self, EmbeddingsError};
use freerouter::shutdown::{CancellationToken, cancel_on_signal};
use freerouter::store::{Store, StoreError, spawn_writer};
use freerouter::time::now_ms;
use freerouter::{metrics as m, providers};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] providers::HttpClientError),
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(String),
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

/// A gateway serving in the background (tests, embedding).
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub store: Store,
    pub state: AppState,
    token: CancellationToken,
    task: JoinHandle<Result<(), StartupError>>,
}

impl RunningGateway {
    /// `http://ADDR`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving, drains, flushes the store writer, and waits for all of it.
    pub async fn shutdown(self) -> Result<(), StartupError> {
        self.token.cancel();
        self.task
            .await
            .map_err(|e| StartupError::Serve(std::io::Error::other(e.to_string())))?
    }
}

/// Starts a gateway on `settings.server.listen` and returns once it accepts connections.
pub async fn spawn(
    settings: Settings,
    source: ConfigSource,
) -> Result<RunningGateway, StartupError> {
    let metrics = m::recorder().map_err(StartupError::Metrics)?;
    m::register_gateway_series();
    let store = Store::open(
        &settings.storage.database,
        Duration::from_millis(settings.storage.busy_timeout_ms),
    )
    .await?;
    let now = now_ms();
    bootstrap(&store, &settings, now).await?;
    let providers = resolve_providers(&settings, &source);
    let catalog = Arc::new(LiveCatalog::load(&store, providers.clone()).await?);
    let records = store.load_health(now).await?;
    let max_cooldown_ms = settings.routing.max_cooldown_s.saturating_mul(1000);
    let health = Arc::new(HealthBoard::from_records(
        records.routes,
        records.keys,
        records.invalid_keys,
        now,
        max_cooldown_ms,
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
    let limiter = ConcurrencyLimiter::new(
        settings.limits.max_concurrent_requests,
        settings.limits.max_queue,
        Duration::from_secs_f64(settings.limits.queue_timeout_s),
    );
    let auth = &settings.auth;
    let state = AppState(Arc::new(Inner {
        engine,
        store: store.clone(),
        limiter,
        streams: Arc::new(tokio::sync::Semaphore::new(
            settings.limits.max_open_streams,
        )),
        client_limiter: settings.limits.per_client().map(ClientLimiter::new),
        auth_throttle: AuthThrottle::new(
            auth.failed_auth_per_client,
            auth.failed_auth_total,
            auth.failed_auth_window_ms,
        ),
        perimeter: Perimeter::new(&settings),
        metrics,
        settings: settings.clone(),
        providers: Arc::new(providers),
        catalog_loaded: AtomicBool::new(true),
    }));
    warn_when_nothing_is_servable(&state);

    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: settings.server.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(StartupError::Serve)?;
    tracing::info!(%addr, database = %settings.storage.database.display(), "gateway listening");
    if !addr.ip().is_loopback() && settings.auth.api_keys.is_empty() {
        tracing::warn!(
            %addr,
            "LISTENING BEYOND LOOPBACK WITHOUT CLIENT KEYS: anyone who can reach this port can spend \
             your provider quotas. Set FREEROUTER__AUTH__API_KEYS (comma-separated) to require one."
        );
    }

    let watcher = tokio::spawn(watch_catalog(state.clone(), background.clone()));
    let pruner = tokio::spawn(prune_ledger(state.clone(), background.clone()));
    let limits_pruner = tokio::spawn(crate::limits::prune(state.clone(), background.clone()));
    let token = CancellationToken::new();
    let app = http::router(state.clone());
    let options = ServeOptions::from_settings(&settings.server);
    let serve_token = token.clone();
    let shutdown = state.clone();
    let task = tokio::spawn(async move {
        serve(listener, app, options, serve_token).await;
        // Then, in order: requests still running end (settled and logged), every lease is settled
        // and the ledger's last writes land, and only then the writer flushes the log and stops.
        let wait = Duration::from_millis(shutdown.settings.quota.shutdown_wait_ms);
        shutdown.engine.ledger.shutdown(wait).await;
        let _ = keeper.await;
        background.cancel();
        let _ = watcher.await;
        let _ = pruner.await;
        let _ = limits_pruner.await;
        let _ = writer_task.await;
        Ok(())
    });
    Ok(RunningGateway {
        addr,
        store,
        state,
        token,
        task,
    })
}

/// Runs a gateway until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings, source: ConfigSource) -> anyhow::Result<()> {
    let gateway = spawn(settings, source).await?;
    let signal = CancellationToken::new();
    cancel_on_signal(signal.clone());
    signal.cancelled().await;
    gateway.shutdown().await?;
    tracing::info!("gateway stopped");
    Ok(())
}

fn warn_when_nothing_is_servable(state: &AppState) {
    let snapshot = state.engine.catalog.snapshot();
    if snapshot.servable().next().is_none() {
        tracing::warn!(
            set_one_of = %snapshot.missing_key_vars().join(", "),
            "no route can be served yet: no provider has a key; requests will get 503 no_routes_available"
        );
    }
    let default_embeddings = state.settings.routing.default_embedding_model.as_deref();
    if let Err(error @ EmbeddingsError::DefaultModelMissing { .. }) =
        embeddings::resolve(&snapshot, "auto", default_embeddings)
    {
        tracing::warn!(%error, "embeddings requests for `auto` will get 503");
    }
}

/// Polls the version counters and reloads what another process changed.
async fn watch_catalog(state: AppState, token: CancellationToken) {
    let every = Duration::from_millis(state.settings.catalog.reload_interval_ms.max(50));
    let mut seen = state.store.versions().await.ok();
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        state.metrics.run_upkeep();
        let Ok(now) = state.store.versions().await else {
            continue;
        };
        if seen.is_some_and(|s| s.catalog == now.catalog)
            && seen.is_some_and(|s| s.health == now.health)
        {
            continue;
        }
        if seen.is_none_or(|s| s.catalog != now.catalog) {
            match state.engine.catalog.reload(&state.store).await {
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
            match state.store.load_health(now_ms()).await {
                Ok(records) => {
                    let now = now_ms();
                    state.engine.health.replace(HealthBoard::from_records(
                        records.routes,
                        records.keys,
                        records.invalid_keys,
                        now,
                        state.settings.routing.max_cooldown_s.saturating_mul(1000),
                    ));
                    tracing::info!("route health reloaded after an outside reset");
                }
                Err(error) => {
                    tracing::warn!(%error, "health reload failed");
                    continue;
                }
            }
        }
        state.catalog_loaded.store(true, Ordering::Relaxed);
        seen = Some(now);
    }
}

/// Settles leases crashed processes left behind and drops ledger rows no window counts any more,
/// once a minute (in bounded batches).
async fn prune_ledger(state: AppState, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        if let Err(error) = state.engine.ledger.prune(now_ms()).await {
            tracing::warn!(%error, "pruning the quota ledger failed");
        }
    }
}
