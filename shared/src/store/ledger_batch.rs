//! Group commit: writes that arrive while the previous batch was being written share one write
//! transaction, so a burst pays one commit (a WAL append and a lock round trip) per batch instead
//! of one per write. Each write is still its own statement, checked against everything before it.
//!
//! This queue knows nothing of what it writes (`BatchOp`); the ledger's statements live in
//! `ledger.rs`. When another process holds the file's write lock past the busy timeout, the batch
//! waits and tries again as a whole: nothing of it was written, so a write is applied exactly once,
//! however long the caller gave up waiting for it before.
//!
//! On PostgreSQL several hosts write at once, so every write names the key whose rows it touches
//! (`BatchOp::serial_key`): the batch takes each named key's transaction-scoped advisory lock
//! first, in sorted order, and holds it to its commit. A grant thereby sees every earlier write of
//! its key, and two hosts' batches never lock rows in opposite orders: the rows a batch writes
//! belong to keys it already holds, so batches sharing a key queue on the first key they share
//! (a deadlock on rows would stand until PostgreSQL's `deadlock_timeout`, a second, before one
//! side is aborted). Should PostgreSQL still abort one (deadlock or serialization failure), that
//! batch, nothing of it written, is tried again like a locked SQLite file. A write that
//! fails on its own aborts a PostgreSQL transaction as a whole: the batch is then written one write
//! per transaction, so each still hears its own result.

use super::{Backend, StoreError};
use futures::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction takes, so a burst cannot hold the write lock for long.
const MAX_BATCH: usize = 128;
/// The pause before trying a batch again when the file was locked by someone else.
const LOCKED_PAUSE: Duration = Duration::from_millis(20);

/// One write the queue applies inside its transaction.
pub(super) trait BatchOp: Send + Sync + 'static {
    type Reply: Send + 'static;
    fn apply<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
        backend: Backend,
    ) -> BoxFuture<'c, Result<Self::Reply, sqlx::Error>>;

    /// The key whose rows this write touches: writes of one key follow one another across hosts
    /// (PostgreSQL's advisory lock), if this write has one.
    fn serial_key(&self) -> Option<String> {
        None
    }
}

type Reply<Op> = Result<<Op as BatchOp>::Reply, StoreError>;
type Queued<Op> = (Op, oneshot::Sender<Reply<Op>>);

/// Where writes are sent; cheap to clone.
pub(super) struct Batcher<Op: BatchOp> {
    queue: mpsc::UnboundedSender<Queued<Op>>,
    progress: Arc<Progress>,
}

impl<Op: BatchOp> Clone for Batcher<Op> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            progress: self.progress.clone(),
        }
    }
}

/// When the batch being written was taken (none: idle), so a caller can tell a store that is
/// slow but moving from one that is stuck.
#[derive(Debug)]
struct Progress {
    start: Instant,
    /// Milliseconds after `start`, or `IDLE`.
    batch_since_ms: AtomicU64,
}

const IDLE: u64 = u64::MAX;

impl Progress {
    fn writing(&self) {
        self.batch_since_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) {
        self.batch_since_ms.store(IDLE, Ordering::Relaxed);
    }

    fn stuck_for(&self) -> Duration {
        match self.batch_since_ms.load(Ordering::Relaxed) {
            IDLE => Duration::ZERO,
            since => self
                .start
                .elapsed()
                .saturating_sub(Duration::from_millis(since)),
        }
    }
}

impl<Op: BatchOp> std::fmt::Debug for Batcher<Op> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<Op: BatchOp> Batcher<Op> {
    /// Starts the batching task on `writer`; it ends when every handle is dropped.
    pub fn start(writer: AnyPool, backend: Backend) -> Self {
        let (queue, requests) = mpsc::unbounded_channel();
        let progress = Arc::new(Progress {
            start: Instant::now(),
            batch_since_ms: AtomicU64::new(IDLE),
        });
        tokio::spawn(run(writer, backend, requests, progress.clone()));
        Self { queue, progress }
    }

    /// How long the batch being written has taken so far (zero when idle): a store that is slow
    /// but moving finishes batches; a stalled one keeps this growing.
    pub fn stuck_for(&self) -> Duration {
        self.progress.stuck_for()
    }

    /// Queues `op` at once (writes keep the order they were submitted in) and returns its result
    /// to await. Dropping the future does not withdraw the write.
    pub fn submit(&self, op: Op) -> impl Future<Output = Reply<Op>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = self.queue.send((op, reply)).is_ok();
        async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            answer.await.unwrap_or(Err(StoreError::Closed))
        }
    }
}

async fn run<Op: BatchOp>(
    writer: AnyPool,
    backend: Backend,
    mut requests: mpsc::UnboundedReceiver<Queued<Op>>,
    progress: Arc<Progress>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        progress.idle();
        if requests.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        progress.writing();
        loop {
            match write_together(&writer, backend, &batch).await {
                Ok(results) => {
                    for ((_, reply), result) in batch.drain(..).zip(results) {
                        let _ = reply.send(result.map_err(StoreError::from));
                    }
                    break;
                }
                // Someone else holds the file: nothing was written; the same batch again.
                Err(error) if is_locked(&error) => tokio::time::sleep(LOCKED_PAUSE).await,
                Err(error) => {
                    // The transaction failed as a whole (nothing kept): every write hears why.
                    let message = error.to_string();
                    for (_, reply) in batch.drain(..) {
                        let _ = reply.send(Err(StoreError::Batch(message.clone())));
                    }
                    break;
                }
            }
        }
    }
}

/// Writes the batch in one transaction; each write's own result, or why the whole failed.
async fn write_together<Op: BatchOp>(
    writer: &AnyPool,
    backend: Backend,
    batch: &[Queued<Op>],
) -> Result<Vec<Result<Op::Reply, sqlx::Error>>, sqlx::Error> {
    let ops: Vec<&Op> = batch.iter().map(|(op, _)| op).collect();
    match backend {
        Backend::Sqlite => write_sqlite(writer, &ops).await,
        Backend::Postgres => match write_postgres(writer, &ops).await {
            Err(error) if !is_locked(&error) && ops.len() > 1 => {
                let mut results = Vec::with_capacity(ops.len());
                for op in &ops {
                    results.push(
                        match write_postgres(writer, std::slice::from_ref(op)).await {
                            Ok(mut one) => one.pop().unwrap_or(Err(error_of_nothing())),
                            Err(error) if is_locked(&error) => return Err(error),
                            Err(error) => Err(error),
                        },
                    );
                }
                Ok(results)
            }
            other => other,
        },
    }
}

async fn write_sqlite<Op: BatchOp>(
    writer: &AnyPool,
    ops: &[&Op],
) -> Result<Vec<Result<Op::Reply, sqlx::Error>>, sqlx::Error> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let result = op.apply(&mut tx, Backend::Sqlite).await;
        if let Err(error) = &result
            && is_locked(error)
        {
            // A statement that met the lock rolls the transaction back: start over.
            return Err(sqlx::Error::PoolTimedOut);
        }
        results.push(result);
    }
    tx.commit().await?;
    Ok(results)
}

/// The whole batch in one transaction holding its keys' advisory locks; any failure fails it all.
async fn write_postgres<Op: BatchOp>(
    writer: &AnyPool,
    ops: &[&Op],
) -> Result<Vec<Result<Op::Reply, sqlx::Error>>, sqlx::Error> {
    let mut keys: Vec<String> = ops.iter().filter_map(|op| op.serial_key()).collect();
    keys.sort();
    keys.dedup();
    let mut tx = writer.begin().await?;
    for key in &keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        results.push(Ok(op.apply(&mut tx, Backend::Postgres).await?));
    }
    tx.commit().await?;
    Ok(results)
}

fn error_of_nothing() -> sqlx::Error {
    sqlx::Error::Protocol("a write returned no result".into())
}

/// SQLITE_BUSY or SQLITE_LOCKED (any extended form), PostgreSQL's deadlock or serialization
/// failure, or no connection in time: nothing was written, try again later.
pub(super) fn is_locked(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(&*code, "40P01" | "40001" | "55P03")
                || code
                    .parse::<i64>()
                    .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
        }),
        _ => false,
    }
}
