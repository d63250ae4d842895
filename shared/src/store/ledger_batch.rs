//! Group commit for the quota ledger: reservations, settlements and releases that arrive while the
//! previous batch was written share one write transaction. Each reservation is still its own
//! statement, checked against everything written before it, so no limit is ever overspent; what is
//! saved is a commit (a WAL append and a lock round trip) per request.

use super::StoreError;
use super::ledger::{RESERVE, limit};
use crate::config::Limits;
use crate::time::EpochMs;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// The most operations one transaction takes, so a burst cannot hold the write lock for long.
const MAX_BATCH: usize = 128;

/// A reservation to take, owned so it can travel to the batching task.
#[derive(Clone, Debug)]
pub(super) struct OwnedAsk {
    pub provider: String,
    pub key_id: String,
    pub route_id: String,
    pub tokens: u64,
    pub now: EpochMs,
    pub expires_ms: EpochMs,
    pub day_start: EpochMs,
    pub key_limits: Limits,
    pub route_limits: Limits,
}

#[derive(Debug)]
pub(super) enum LedgerOp {
    Reserve(Box<OwnedAsk>),
    Settle { id: i64, tokens: u64 },
    Release { id: i64 },
}

/// `Some(id)` for a granted reservation, `None` for a refused one or another operation.
type Reply = Result<Option<i64>, StoreError>;

/// Where ledger operations are sent; cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct LedgerBatcher {
    queue: mpsc::UnboundedSender<(LedgerOp, oneshot::Sender<Reply>)>,
}

impl LedgerBatcher {
    /// Starts the batching task on `writer`; it ends when every handle is dropped.
    pub fn start(writer: SqlitePool) -> Self {
        let (queue, requests) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, requests));
        Self { queue }
    }

    pub async fn submit(&self, op: LedgerOp) -> Reply {
        let (reply, answer) = oneshot::channel();
        if self.queue.send((op, reply)).is_err() {
            return Err(StoreError::Closed);
        }
        answer.await.unwrap_or(Err(StoreError::Closed))
    }
}

async fn run(
    writer: SqlitePool,
    mut requests: mpsc::UnboundedReceiver<(LedgerOp, oneshot::Sender<Reply>)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if batch.len() == 1 || !write_together(&writer, &mut batch).await {
            // Alone, or the shared transaction failed as a whole: each on its own.
            for (op, reply) in batch.drain(..) {
                let result = match writer.acquire().await {
                    Ok(mut conn) => apply(&mut conn, &op).await,
                    Err(error) => Err(error.into()),
                };
                let _ = reply.send(result);
            }
        }
    }
}

/// Writes the batch in one transaction and answers every operation; `false` (nothing answered,
/// nothing kept) when the transaction could not be opened or committed.
async fn write_together(
    writer: &SqlitePool,
    batch: &mut Vec<(LedgerOp, oneshot::Sender<Reply>)>,
) -> bool {
    let Ok(mut tx) = writer.begin_with("BEGIN IMMEDIATE").await else {
        return false;
    };
    let mut results = Vec::with_capacity(batch.len());
    for (op, _) in batch.iter() {
        results.push(apply(&mut tx, op).await);
    }
    if tx.commit().await.is_err() {
        return false;
    }
    for ((_, reply), result) in batch.drain(..).zip(results) {
        let _ = reply.send(result);
    }
    true
}

async fn apply(conn: &mut SqliteConnection, op: &LedgerOp) -> Reply {
    match op {
        LedgerOp::Reserve(ask) => {
            let id: Option<(i64,)> = sqlx::query_as(RESERVE)
                .bind(&ask.provider)
                .bind(&ask.key_id)
                .bind(&ask.route_id)
                .bind(ask.now)
                .bind(ask.tokens.min(i64::MAX as u64) as i64)
                .bind(ask.expires_ms)
                .bind(limit(ask.key_limits.rpm))
                .bind(limit(ask.key_limits.tpm))
                .bind(limit(ask.key_limits.rpd))
                .bind(limit(ask.key_limits.tpd))
                .bind(ask.day_start)
                .bind(limit(ask.route_limits.rpm))
                .bind(limit(ask.route_limits.tpm))
                .bind(limit(ask.route_limits.rpd))
                .bind(limit(ask.route_limits.tpd))
                .fetch_optional(&mut *conn)
                .await?;
            Ok(id.map(|(id,)| id))
        }
        LedgerOp::Settle { id, tokens } => {
            sqlx::query("UPDATE quota_ledger SET tokens = ?, settled = 1 WHERE id = ?")
                .bind((*tokens).min(i64::MAX as u64) as i64)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            Ok(None)
        }
        LedgerOp::Release { id } => {
            sqlx::query("DELETE FROM quota_ledger WHERE id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            Ok(None)
        }
    }
}
