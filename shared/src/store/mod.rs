//! The store: the one database all processes share, a SQLite file by default or PostgreSQL for
//! several hosts. All SQL of the project lives under this module.

mod changes;
pub use changes::Changes;
mod console;
mod copy;
pub use copy::{Copied, CopyError};
mod database;
#[doc(hidden)]
pub mod testing;
pub use console::{FailedRequest, ROLLUP_MS, Reasons, TrafficBucket};
pub use database::{Backend, Database};
mod health;
mod ledger;
mod ledger_batch;
mod ledger_sql;
pub use health::HealthRecords;
pub use ledger::{
    LeaseAsk, LeaseClose, LeaseGrant, LeaseKey, PRUNE_BATCH, Pruned, Standing, UnreservedUse,
};
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

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor};
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

/// A handle on the shared store, a SQLite file or a PostgreSQL database (cheap to clone).
///
/// The statements are written once where both engines read them alike (`$1` placeholders, upserts,
/// `IS DISTINCT FROM`, `CAST(SUM(..) AS BIGINT)`) and per engine where they differ
/// (`ledger_sql::Sql`); the domain never knows which engine it talks to.
///
/// On SQLite, writes go through one connection: SQLite takes one writer at a time anyway, and
/// connections of one process competing for the lock would wait in SQLite's busy handler, which
/// sleeps whole milliseconds. Reads have their own connections and never wait for a write (WAL).
/// On PostgreSQL reads and writes share one pool: the server orders concurrent writers itself.
///
/// The quota ledger stays atomic across hosts on PostgreSQL by a lock per key, not by
/// SERIALIZABLE: a lease grant is one checked statement (as on SQLite), run in a transaction that
/// first takes the key's transaction-scoped advisory lock (`pg_advisory_xact_lock`, keys sorted;
/// `ledger_batch.rs`). Grants of one key on every host then run one after another, each seeing
/// every lease committed before it under READ COMMITTED, while grants of different keys never
/// wait for each other. SERIALIZABLE would be as safe, but under a burst from several hosts on one
/// key every conflicting transaction but one aborts and retries, so the busiest key pays the most;
/// a lock queues them instead, one short statement each.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
    database: Database,
    ledger: ledger::LedgerQueue,
}

/// One migration file: version, name, text.
type MigrationFile = (i64, &'static str, &'static str);

/// The files of `migrations/sqlite/`, embedded (without sqlx's `macros` feature, which doubles
/// build time).
const SQLITE_MIGRATIONS: &[MigrationFile] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "aliases and quota ledger",
        include_str!("../../../migrations/sqlite/0002_aliases_and_quota_ledger.sql"),
    ),
    (
        3,
        "maintenance",
        include_str!("../../../migrations/sqlite/0003_maintenance.sql"),
    ),
    (
        4,
        "console rollups",
        include_str!("../../../migrations/sqlite/0004_console_rollups.sql"),
    ),
    (
        5,
        "quota buckets",
        include_str!("../../../migrations/sqlite/0005_quota_buckets.sql"),
    ),
    (
        6,
        "quota leases",
        include_str!("../../../migrations/sqlite/0006_quota_leases.sql"),
    ),
    (
        9,
        "health reprobes",
        include_str!("../../../migrations/sqlite/0009_health_reprobes.sql"),
    ),
    (
        12,
        "stored responses",
        include_str!("../../../migrations/sqlite/0012_stored_responses.sql"),
    ),
    (
        13,
        "monthly buckets",
        include_str!("../../../migrations/sqlite/0013_monthly_buckets.sql"),
    ),
    (
        14,
        "traffic rollup per batch",
        include_str!("../../../migrations/sqlite/0014_traffic_rollup_per_batch.sql"),
    ),
];

/// The files of `migrations/postgres/`: the schema SQLite's migrations add up to, in one step,
/// then whatever changes both engines later.
const POSTGRES_MIGRATIONS: &[MigrationFile] = &[
    (
        1,
        "schema",
        include_str!("../../../migrations/postgres/0001_schema.sql"),
    ),
    (
        2,
        "monthly buckets",
        include_str!("../../../migrations/postgres/0002_monthly_buckets.sql"),
    ),
    (
        3,
        "traffic rollup per batch",
        include_str!("../../../migrations/postgres/0003_traffic_rollup_per_batch.sql"),
    ),
];

/// A count as a column takes it: SQL integers are signed 64-bit, so a larger one saturates.
fn sql_int(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

fn migrator(files: &[MigrationFile]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        files
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

/// Connections of one process to a PostgreSQL database (the ledger's batches, reads, the request
/// log and health writes share them).
const POSTGRES_POOL: u32 = 8;

impl Store {
    /// Opens the store: a SQLite file (created if needed, WAL mode, `busy_timeout`) or a
    /// PostgreSQL database, and applies pending migrations.
    pub async fn open(
        database: impl Into<Database>,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let database = database.into();
        let (pool, writer) = match &database {
            Database::Sqlite(path) => open_sqlite(path, busy_timeout).await?,
            Database::Postgres(url) => {
                let options: AnyConnectOptions = url.parse()?;
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_POOL)
                    .acquire_timeout(busy_timeout.max(Duration::from_secs(5)))
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        let backend = database.backend();
        let ledger = ledger_batch::Batcher::start(writer.clone(), backend);
        let store = Self {
            pool,
            writer,
            backend,
            database,
            ledger,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where this store lives.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The `n`th placeholder of a statement built at run time with many of them: `$n` for
    /// PostgreSQL, `?` for SQLite, whose binding looks each numbered name up in a list (a
    /// thousand-row insert with `$n` spent more time there than everything else together).
    fn placeholder(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// Applies pending migrations. Several processes may start at once: on PostgreSQL sqlx holds
    /// an advisory lock while it migrates, so one applies and the others find it done; on SQLite
    /// the write lock orders them, and a loser that met the lock re-reads and finds them applied.
    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = migrator(match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        });
        let mut last = None;
        for _ in 0..5 {
            match migrator.run(&self.writer).await {
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

/// The SQLite file's two pools (reads, the one writer), through sqlx's `Any` driver so the
/// statements are shared with PostgreSQL; WAL, synchronous and the busy timeout are set on every
/// connection, since a URL cannot carry them.
async fn open_sqlite(
    path: &std::path::Path,
    busy_timeout: Duration,
) -> Result<(AnyPool, AnyPool), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let absolute = std::path::absolute(path).map_err(|source| StoreError::CreateDir {
        path: path.display().to_string(),
        source,
    })?;
    let url = SqliteConnectOptions::new()
        .filename(&absolute)
        .create_if_missing(true)
        .to_url_lossy();
    let options = AnyConnectOptions::from_url(&url)?;
    let busy_ms = busy_timeout.as_millis().min(i32::MAX as u128);
    let pragmas: std::sync::Arc<str> = format!(
        "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
    )
    .into();
    let pool = |connections: u32| {
        AnyPoolOptions::new()
            .max_connections(connections)
            .after_connect({
                let pragmas = pragmas.clone();
                move |conn, _| {
                    let pragmas = sqlx::AssertSqlSafe(pragmas.to_string());
                    Box::pin(async move {
                        conn.execute(sqlx::raw_sql(pragmas)).await?;
                        Ok(())
                    })
                }
            })
            .connect_with(options.clone())
    };
    let writer = pool(1).await?;
    let reads = pool(4).await?;
    Ok((reads, writer))
}
