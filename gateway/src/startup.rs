//! Startup: the engine's runtime (store, catalog, health, the store writer, the catalog watcher,
//! the ledger keeper and pruner: `freerouter::runtime`, shared with the library's `Router`), then
//! the HTTP face's own parts; bind, and serve until cancelled; then drain, settle the quota ledger,
//! and flush.

use crate::demo::{self, DemoUpstream};
use crate::http;
use crate::http::browser::Perimeter;
use crate::limits::{AuthThrottle, ClientLimiter, ConcurrencyLimiter};
use crate::serve::{ServeOptions, serve};
use crate::state::{AppState, Inner};
use freerouter::config::{ConfigSource, Settings};
use freerouter::metrics as m;
use freerouter::routing::embeddings::{self, EmbeddingsError};
use freerouter::runtime::{Runtime, RuntimeError};
use freerouter::shutdown::{CancellationToken, cancel_on_signal};
use freerouter::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(String),
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot start demo mode's simulated tiers: {0}")]
    Demo(std::io::Error),
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
    mut settings: Settings,
    source: ConfigSource,
) -> Result<RunningGateway, StartupError> {
    let metrics = m::recorder().map_err(StartupError::Metrics)?;
    m::register_gateway_series();
    let demo = match settings.demo.enabled {
        false => None,
        true => {
            let upstream = DemoUpstream::start().await.map_err(StartupError::Demo)?;
            demo::apply(&mut settings, &upstream.base_url());
            Some(upstream)
        }
    };
    let runtime = Runtime::start(&settings, &source).await?;
    let engine = runtime.engine.clone();
    let store = runtime.store.clone();
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
        providers: runtime.providers.clone(),
        catalog_loaded: AtomicBool::new(true),
        demo: demo.is_some(),
    }));
    warn_when_nothing_is_servable(&state);

    let listener = match tokio::net::TcpListener::bind(&settings.server.listen).await {
        Ok(listener) => listener,
        Err(source) => {
            runtime.shutdown().await;
            return Err(StartupError::Bind {
                addr: settings.server.listen.clone(),
                source,
            });
        }
    };
    let addr = listener.local_addr().map_err(StartupError::Serve)?;
    let mode = if demo.is_some() { "demo" } else { "normal" };
    tracing::info!(%addr, database = %settings.storage.database, mode, "gateway listening");
    if let Some(upstream) = &demo {
        tracing::warn!(
            routes = %demo::tiers::route_ids().join(", "),
            upstream = %upstream.base_url(),
            database = %settings.storage.database,
            "DEMO MODE: routing between simulated free tiers (demo/…) served in this process, on a \
             database of their own (your real catalog and quotas are untouched); answers are not from \
             a real model. Start without --demo / FREEROUTER_DEMO, with a provider key, for real free tiers."
        );
    }
    if !addr.ip().is_loopback() && settings.auth.api_keys.is_empty() {
        tracing::warn!(
            %addr,
            "LISTENING BEYOND LOOPBACK WITHOUT CLIENT KEYS: anyone who can reach this port can spend \
             your provider quotas. Set FREEROUTER__AUTH__API_KEYS (comma-separated) to require one."
        );
    }

    let background = CancellationToken::new();
    let upkeep = tokio::spawn(metrics_upkeep(state.clone(), background.clone()));
    let limits_pruner = tokio::spawn(crate::limits::prune(state.clone(), background.clone()));
    let token = CancellationToken::new();
    let app = http::router(state.clone());
    let options = ServeOptions::from_settings(&settings.server);
    let serve_token = token.clone();
    let task = tokio::spawn(async move {
        serve(listener, app, options, serve_token).await;
        // Then, in order: requests still running end (settled and logged), every lease is settled
        // and the ledger's last writes land, and only then the writer flushes the log and stops.
        runtime.shutdown().await;
        background.cancel();
        let _ = upkeep.await;
        let _ = limits_pruner.await;
        drop(demo);
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
            "no route can be served yet: no provider has a key; requests will get 503 no_routes_available. \
             To see FreeRouter route without any key, start it with --demo (or FREEROUTER_DEMO=1): \
             simulated free tiers on a database of their own"
        );
    }
    let default_embeddings = state.settings.routing.default_embedding_model.as_deref();
    if let Err(error @ EmbeddingsError::DefaultModelMissing { .. }) =
        embeddings::resolve(&snapshot, "auto", default_embeddings)
    {
        tracing::warn!(%error, "embeddings requests for `auto` will get 503");
    }
}

/// Keeps the metrics recorder's histograms from growing between scrapes.
async fn metrics_upkeep(state: AppState, token: CancellationToken) {
    let every = Duration::from_millis(state.settings.catalog.reload_interval_ms.max(50));
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        state.metrics.run_upkeep();
    }
}
