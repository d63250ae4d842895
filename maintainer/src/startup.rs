//! Startup: open the store (migrating, seeding), build the maintenance context, start the jobs and
//! the HTTP port; on cancellation, wait for runs in progress and stop.

use crate::{http, jobs, scheduler};
use freerouter::catalog::live::bootstrap;
use freerouter::catalog::resolve_providers;
use freerouter::config::{ConfigSource, Settings};
use freerouter::maintenance::Maintenance;
use freerouter::shutdown::{CancellationToken, cancel_on_signal};
use freerouter::store::{Store, StoreError};
use freerouter::{metrics as m, providers};
use std::net::SocketAddr;
use std::sync::Arc;
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
}

/// A maintainer running in the background.
pub struct RunningMaintainer {
    pub addr: SocketAddr,
    pub maintenance: Arc<Maintenance>,
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningMaintainer {
    /// Stops between job runs and waits for the jobs and the HTTP port.
    pub async fn shutdown(self) {
        self.token.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

pub async fn spawn(
    settings: Settings,
    source: ConfigSource,
) -> Result<RunningMaintainer, StartupError> {
    let metrics = m::recorder().map_err(StartupError::Metrics)?;
    let store = Store::open(
        &settings.storage.database,
        Duration::from_millis(settings.storage.busy_timeout_ms),
    )
    .await?;
    bootstrap(&store, &settings, freerouter::time::now_ms()).await?;
    let maintenance = Arc::new(Maintenance {
        store,
        providers: resolve_providers(&settings, &source),
        http: providers::http_client(Duration::from_millis(settings.routing.connect_timeout_ms))?,
        settings: settings.maintainer.clone(),
    });
    let _ = maintenance.publish_pending().await;
    let listener = tokio::net::TcpListener::bind(&settings.maintainer.listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: settings.maintainer.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartupError::Bind {
        addr: settings.maintainer.listen.clone(),
        source,
    })?;
    tracing::info!(%addr, auto_maintenance = settings.maintainer.auto_maintenance, "maintainer listening");
    let token = CancellationToken::new();
    let mut tasks = scheduler::start(jobs::all(maintenance.clone()), token.clone());
    let serve_token = token.clone();
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(listener, http::router(metrics))
            .with_graceful_shutdown(serve_token.cancelled_owned())
            .await;
    }));
    Ok(RunningMaintainer {
        addr,
        maintenance,
        token,
        tasks,
    })
}

/// Runs the maintainer until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings, source: ConfigSource) -> anyhow::Result<()> {
    let maintainer = spawn(settings, source).await?;
    let signal = CancellationToken::new();
    cancel_on_signal(signal.clone());
    signal.cancelled().await;
    maintainer.shutdown().await;
    tracing::info!("maintainer stopped");
    Ok(())
}
