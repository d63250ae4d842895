//! Startup: open the store, bring the catalog in line with the config, load health, start the
//! background tasks (store writer, catalog watcher, ledger keeper and pruner), bind, and serve
//! until cancelled; then drain, settle the quota ledger, and flush.

use crate::http;
use crate::limits::ConcurrencyLimiter;
use crate::state::{AppState, Inner};
use freerouter::catalog::live::{LiveCatalog, bootstrap};
use freerouter::catalog::resolve_providers;
use freerouter::config::{ConfigSource, Settings};
use freerouter::health::HealthBoard;
use freerouter::quota::Ledger;
use freerouter::routing::Engine;
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
    let health = Arc::new(HealthBoard::from_records(
        records.routes,
        records.keys,
        records.invalid_keys,
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
    let state = AppState(Arc::new(Inner {
        engine,
        store: store.clone(),
        limiter,
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
    let token = CancellationToken::new();
    let app = http::router(state.clone());
    let grace = Duration::from_secs(settings.server.shutdown_grace_s);
    let serve_token = token.clone();
    let shutdown = state.clone();
    let task = tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(serve_token.clone().cancelled_owned());
        let drained = async {
            serve_token.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = server => result.map_err(StartupError::Serve),
            _ = drained => {
                tracing::warn!("shutdown grace ran out with requests still open");
                Ok(())
            }
        };
        // Then, in order: requests still running end (settled and logged), every lease is settled
        // and the ledger's last writes land, and only then the writer flushes the log and stops.
        let wait = Duration::from_millis(shutdown.settings.quota.shutdown_wait_ms);
        shutdown.engine.ledger.shutdown(wait).await;
        let _ = keeper.await;
        background.cancel();
        let _ = watcher.await;
        let _ = pruner.await;
        let _ = writer_task.await;
        result
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
                    state.engine.health.replace(HealthBoard::from_records(
                        records.routes,
                        records.keys,
                        records.invalid_keys,
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
