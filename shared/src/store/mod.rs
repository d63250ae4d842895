//! The store: the one SQLite file all processes share. All SQL of the project lives under this module.

mod console;
pub use console::{FailedRequest, ROLLUP_MS, Reasons, TrafficBucket};
mod health;
mod ledger;
mod ledger_batch;
mod ledger_sql;
pub use health::HealthRecords;
pub use ledger::{LeaseAsk, LeaseClose, LeaseGrant, PRUNE_BATCH, Pruned, Standing, UnreservedUse};
mod meta;
mod quota;
mod request_log;
mod responses;
pub use responses::StoredResponse;
mod retention;
pub use retention::Trimmed;
mod routes;
mod suggestions;
mod verdicts;
pub use suggestions::{Suggestion, SuggestionKind, SuggestionStatus};
pub use verdicts::Verdict;
mod writer;
pub use writer::{StoreWrite, StoreWriter, spawn_writer};

pub use meta::Versions;
pub use quota::RateLimitHint;
pub use request_log::RequestLogRow;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("the store is shutting down")]
    Closed,
    #[error("a batched write failed: {0}")]
    Batch(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A handle on the shared SQLite file (cheap to clone).
///
/// Writes go through one connection: SQLite takes one writer at a time anyway, and connections of
/// one process competing for the lock would wait in SQLite's busy handler, which sleeps whole
/// milliseconds. Reads have their own connections and never wait for a write (WAL).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    writer: SqlitePool,
    ledger: ledger::LedgerQueue,
}

/// The files of `migrations/`, embedded (without sqlx's `macros` feature, which doubles build time).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "aliases and quota ledger",
        include_str!("../../../migrations/0002_aliases_and_quota_ledger.sql"),
    ),
    (
        3,
        "maintenance",
        include_str!("../../../migrations/0003_maintenance.sql"),
    ),
    (
        4,
        "console rollups",
        include_str!("../../../migrations/0004_console_rollups.sql"),
    ),
    (
        5,
        "quota buckets",
        include_str!("../../../migrations/0005_quota_buckets.sql"),
    ),
    (
        6,
        "quota leases",
        include_str!("../../../migrations/0006_quota_leases.sql"),
    ),
    (
        9,
        "health reprobes",
        include_str!("../../../migrations/0009_health_reprobes.sql"),
    ),
    (
        12,
        "stored responses",
        include_str!("../../../migrations/0012_stored_responses.sql"),
    ),
];

fn migrator() -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

impl Store {
    /// Opens (creating if needed) the file in WAL mode with a busy timeout, and applies migrations.
    pub async fn open(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let ledger = ledger_batch::Batcher::start(writer.clone());
        let store = Self {
            pool,
            writer,
            ledger,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations. Two processes may race here; the loser re-reads and finds them applied.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut last = None;
        for _ in 0..5 {
            match migrator().run(&self.writer).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Err(last
            .map(StoreError::from)
            .unwrap_or_else(|| StoreError::Corrupt("migration".into())))
    }

    /// `SELECT 1`: whether the database answers (`/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
