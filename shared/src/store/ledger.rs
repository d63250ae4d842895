//! The quota ledger as stored: leases taken, committed, settled, corrected; usage read back.
//! Every write goes through the group-commit queue (`ledger_batch.rs`) in the order it was asked
//! for; the statements are in `ledger_sql.rs`.

use super::ledger_batch::{BatchOp, Batcher};
use super::ledger_sql::{
    ADJUST, CLOSE, COMMIT, DELETE_OLD_BUCKETS, DELETE_OLD_ROWS, DROP_UNUSED, GRANT, GRANTED_BEFORE,
    HINT_BLOCKS_UNTIL, OTHER_HOLDERS, SEAL, SETTLE_STRANDED, Sql, UNRESERVED, USAGE,
};
use super::{Backend, Store, StoreError, sql_int};
use crate::config::Limits;
use crate::quota::window::{Rolling, Usage, month_start};
use crate::time::EpochMs;
use futures::future::BoxFuture;
use sqlx::AnyConnection;
use std::future::Future;

/// Rows one pruning statement touches, so retention never holds the write lock for long.
pub const PRUNE_BATCH: i64 = 1_000;
/// An expired lease is left this long to its own holder to settle exactly, before the pruner
/// settles it at its committed mark.
const STRANDED_AFTER_MS: EpochMs = 60_000;

/// A lease to take: up to `requests` and `tokens` on (provider, key, route), as much as every limit
/// has room for, but at least one request and `min_tokens`.
#[derive(Clone, Debug)]
pub struct LeaseAsk {
    pub provider: String,
    pub key_id: String,
    pub route_id: String,
    /// The process taking it, and its own sequence number for this write.
    pub holder: String,
    pub seq: i64,
    pub now: EpochMs,
    /// When the lease ends; also the date it counts at while live.
    pub expires_ms: EpochMs,
    pub day_start: EpochMs,
    pub requests: u64,
    pub tokens: u64,
    pub min_tokens: u64,
    /// The committed mark it starts with (capped by what is granted).
    pub committed_requests: u64,
    pub committed_tokens: u64,
    /// The key's limits across the provider's routes.
    pub key_limits: Limits,
    /// The key's limits on this route.
    pub route_limits: Limits,
}

/// A lease as granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseGrant {
    pub id: i64,
    pub requests: u64,
    pub tokens: u64,
    pub committed_requests: u64,
    pub committed_tokens: u64,
}

/// Requests sent without a lease while the store did not answer (see `quota` on a stalled store).
#[derive(Clone, Debug)]
pub struct UnreservedUse {
    pub provider: String,
    pub key_id: String,
    pub route_id: String,
    pub holder: String,
    pub seq: i64,
    pub at_ms: EpochMs,
    pub requests: u64,
    pub tokens: u64,
}

/// A key as the ledger stands: its use across the provider and on one route, and how many other
/// processes hold a live lease on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub key: Usage,
    pub route: Usage,
    pub other_holders: u64,
}

/// What one pruning pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Leases of processes that never came back, settled at their committed mark.
    pub stranded_settled: u64,
    pub rows_deleted: u64,
}

/// The key a lease belongs to. On PostgreSQL every write of a key's ledger rows first takes the
/// key's lock: the rows a write touches (its lease, the running totals its triggers move) then
/// belong to keys it holds, taken in one order by every host, so two hosts' batches queue on the
/// first key they share instead of locking rows in opposite orders — a deadlock PostgreSQL only
/// breaks after its `deadlock_timeout` (a second), a second that read as a stalled store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    pub provider: String,
    pub key_id: String,
}

impl LeaseKey {
    pub fn new(provider: &str, key_id: &str) -> Self {
        Self {
            provider: provider.to_string(),
            key_id: key_id.to_string(),
        }
    }

    /// The name of the key's lock.
    fn serial(&self) -> String {
        serial_key(&self.provider, &self.key_id)
    }
}

fn serial_key(provider: &str, key_id: &str) -> String {
    format!("quota\u{1f}{provider}\u{1f}{key_id}")
}

#[derive(Debug)]
pub(super) enum LedgerOp {
    Grant(Box<LeaseAsk>),
    Commit {
        key: LeaseKey,
        id: i64,
        requests: u64,
        tokens: u64,
    },
    Seal(LeaseKey, LeaseClose),
    Close(LeaseKey, LeaseClose),
    Adjust {
        key: LeaseKey,
        id: i64,
        requests: i64,
        tokens: i64,
    },
    Unreserved(Box<UnreservedUse>),
}

/// A lease settled with its exact use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseClose {
    pub id: i64,
    pub requests: u64,
    pub tokens: u64,
    /// Its last hand-out (no request from it is later).
    pub at_ms: EpochMs,
}

#[derive(Debug)]
pub(super) enum LedgerReply {
    Granted(Option<LeaseGrant>),
    Done,
}

/// The usage statement's columns: minute, day and month counts, the minute's oldest row, the
/// rolling window's counts and its oldest bucket.
type UsageRow = (
    i64,
    i64,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
);

fn limit(value: Option<u64>) -> Option<i64> {
    value.map(sql_int)
}

type GrantRow = (i64, i64, i64, i64, i64);

fn grant_of((id, requests, tokens, committed_requests, committed_tokens): GrantRow) -> LeaseGrant {
    let count = |v: i64| v.max(0) as u64;
    LeaseGrant {
        id,
        requests: count(requests),
        tokens: count(tokens),
        committed_requests: count(committed_requests),
        committed_tokens: count(committed_tokens),
    }
}

impl BatchOp for LedgerOp {
    type Reply = LedgerReply;

    fn serial_key(&self) -> Option<String> {
        Some(match self {
            LedgerOp::Grant(ask) => serial_key(&ask.provider, &ask.key_id),
            LedgerOp::Commit { key, .. }
            | LedgerOp::Seal(key, _)
            | LedgerOp::Close(key, _)
            | LedgerOp::Adjust { key, .. } => key.serial(),
            LedgerOp::Unreserved(used) => serial_key(&used.provider, &used.key_id),
        })
    }

    fn apply<'c>(
        &'c self,
        conn: &'c mut AnyConnection,
        backend: Backend,
    ) -> BoxFuture<'c, Result<LedgerReply, sqlx::Error>> {
        Box::pin(async move {
            match self {
                LedgerOp::Grant(ask) => {
                    let key_window = Rolling::ending_at(ask.key_limits.window_hours, ask.now);
                    let route_window = Rolling::ending_at(ask.route_limits.window_hours, ask.now);
                    let row: Option<GrantRow> = sqlx::query_as(GRANT.text(backend))
                        .bind(&ask.provider)
                        .bind(&ask.key_id)
                        .bind(&ask.route_id)
                        .bind(ask.now)
                        .bind(sql_int(ask.requests))
                        .bind(sql_int(ask.tokens))
                        .bind(sql_int(ask.min_tokens))
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
                        .bind(sql_int(ask.committed_requests))
                        .bind(sql_int(ask.committed_tokens))
                        .bind(&ask.holder)
                        .bind(ask.seq)
                        .bind(month_start(ask.now))
                        .bind(limit(ask.key_limits.rpmonth))
                        .bind(limit(ask.key_limits.tpmonth))
                        .bind(limit(ask.route_limits.rpmonth))
                        .bind(limit(ask.route_limits.tpmonth))
                        .bind(key_window.grain)
                        .bind(key_window.start)
                        .bind(route_window.grain)
                        .bind(route_window.start)
                        .bind(limit(ask.key_limits.rpwindow))
                        .bind(limit(ask.key_limits.tpwindow))
                        .bind(limit(ask.route_limits.rpwindow))
                        .bind(limit(ask.route_limits.tpwindow))
                        .fetch_optional(&mut *conn)
                        .await?;
                    let row = match row {
                        Some(row) => Some(row),
                        // Refused, or this very lease was written by an earlier try of ours.
                        None => {
                            sqlx::query_as(GRANTED_BEFORE.text(backend))
                                .bind(&ask.holder)
                                .bind(ask.seq)
                                .fetch_optional(&mut *conn)
                                .await?
                        }
                    };
                    Ok(LedgerReply::Granted(row.map(grant_of)))
                }
                LedgerOp::Commit {
                    id,
                    requests,
                    tokens,
                    ..
                } => {
                    sqlx::query(COMMIT.text(backend))
                        .bind(id)
                        .bind(sql_int(*requests))
                        .bind(sql_int(*tokens))
                        .execute(&mut *conn)
                        .await?;
                    Ok(LedgerReply::Done)
                }
                LedgerOp::Seal(_, seal) => {
                    sqlx::query(SEAL.text(backend))
                        .bind(seal.id)
                        .bind(seal.at_ms)
                        .bind(sql_int(seal.requests))
                        .bind(sql_int(seal.tokens))
                        .execute(&mut *conn)
                        .await?;
                    Ok(LedgerReply::Done)
                }
                LedgerOp::Close(_, close) if close.requests == 0 => {
                    sqlx::query(DROP_UNUSED.text(backend))
                        .bind(close.id)
                        .execute(&mut *conn)
                        .await?;
                    Ok(LedgerReply::Done)
                }
                LedgerOp::Close(_, close) => {
                    sqlx::query(CLOSE.text(backend))
                        .bind(close.id)
                        .bind(sql_int(close.requests))
                        .bind(sql_int(close.tokens))
                        .bind(close.at_ms)
                        .execute(&mut *conn)
                        .await?;
                    Ok(LedgerReply::Done)
                }
                LedgerOp::Adjust {
                    id,
                    requests,
                    tokens,
                    ..
                } => {
                    sqlx::query(ADJUST.text(backend))
                        .bind(id)
                        .bind(requests)
                        .bind(tokens)
                        .execute(&mut *conn)
                        .await?;
                    Ok(LedgerReply::Done)
                }
                LedgerOp::Unreserved(used) => {
                    sqlx::query(UNRESERVED.text(backend))
                        .bind(&used.provider)
                        .bind(&used.key_id)
                        .bind(&used.route_id)
                        .bind(used.at_ms)
                        .bind(sql_int(used.requests))
                        .bind(sql_int(used.tokens))
                        .bind(&used.holder)
                        .bind(used.seq)
                        .execute(&mut *conn)
                        .await?;
                    Ok(LedgerReply::Done)
                }
            }
        })
    }
}

pub(super) type LedgerQueue = Batcher<LedgerOp>;

/// Queues `op` now (so writes keep the order they were asked in) and returns its answer to await.
fn queued(
    queue: &LedgerQueue,
    op: LedgerOp,
) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
    let answer = queue.submit(op);
    async move { answer.await.map(|_| ()) }
}

impl Store {
    /// How long the ledger's current write batch has been waiting for the file (zero when none
    /// is): what tells a stalled store from a busy one.
    pub fn ledger_stuck_for(&self) -> std::time::Duration {
        self.ledger.stuck_for()
    }

    /// Takes a lease in one checked statement; `None` when no limit (or what the provider last
    /// said is left) has room for one request of `min_tokens`. The write is queued at once; the
    /// future only waits for its answer, and dropping it does not withdraw the write.
    pub fn grant_lease(
        &self,
        ask: LeaseAsk,
    ) -> impl Future<Output = Result<Option<LeaseGrant>, StoreError>> + Send + 'static {
        let answer = self.ledger.submit(LedgerOp::Grant(Box::new(ask)));
        async move {
            match answer.await? {
                LedgerReply::Granted(grant) => Ok(grant),
                LedgerReply::Done => Ok(None),
            }
        }
    }

    /// Raises a live lease's committed mark to `requests` and `tokens`.
    pub fn commit_lease(
        &self,
        key: &LeaseKey,
        id: i64,
        requests: u64,
        tokens: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        queued(
            &self.ledger,
            LedgerOp::Commit {
                key: key.clone(),
                id,
                requests,
                tokens,
            },
        )
    }

    /// Seals a lease that has handed out its whole block: dated at its last hand-out, committed
    /// at what was handed out (`requests`, `tokens`), still counted whole until settled.
    pub fn seal_lease(
        &self,
        key: &LeaseKey,
        seal: LeaseClose,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        queued(&self.ledger, LedgerOp::Seal(key.clone(), seal))
    }

    /// Settles a lease with its exact use (a lease nothing was handed out from is deleted).
    pub fn close_lease(
        &self,
        key: &LeaseKey,
        close: LeaseClose,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        queued(&self.ledger, LedgerOp::Close(key.clone(), close))
    }

    /// Corrects a settled lease by what its requests in flight at the close turned out to use.
    pub fn adjust_lease(
        &self,
        key: &LeaseKey,
        id: i64,
        requests: i64,
        tokens: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        queued(
            &self.ledger,
            LedgerOp::Adjust {
                key: key.clone(),
                id,
                requests,
                tokens,
            },
        )
    }

    /// Records requests sent without a lease (once: a second try of the same `seq` is ignored).
    pub fn record_unreserved(
        &self,
        used: UnreservedUse,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        queued(&self.ledger, LedgerOp::Unreserved(Box::new(used)))
    }

    /// What a key counts: across the provider (`route_id: None`) or on one route, that scope's
    /// rolling window being `window_hours` long.
    pub async fn usage(
        &self,
        provider: &str,
        key_id: &str,
        route_id: Option<&str>,
        now: EpochMs,
        day_start: EpochMs,
        window_hours: Option<u32>,
    ) -> Result<Usage, StoreError> {
        let window = Rolling::ending_at(window_hours, now);
        let row: UsageRow = sqlx::query_as(USAGE.text(self.backend))
            .bind(provider)
            .bind(key_id)
            .bind(now)
            .bind(day_start)
            .bind(route_id)
            .bind(month_start(now))
            .bind(window.grain)
            .bind(window.start)
            .fetch_one(&self.pool)
            .await?;
        let count = |n: i64| n.max(0) as u64;
        Ok(Usage {
            minute_requests: count(row.0),
            minute_tokens: count(row.1),
            minute_oldest_ms: row.2,
            day_requests: count(row.3),
            day_tokens: count(row.4),
            month_requests: count(row.5),
            month_tokens: count(row.6),
            window_requests: count(row.7),
            window_tokens: count(row.8),
            window_oldest_ms: row.9,
        })
    }

    /// The key across the provider and on `route_id` (each with its own rolling window), and the
    /// other live holders (reads only).
    #[allow(clippy::too_many_arguments)]
    pub async fn standing(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        holder: &str,
        now: EpochMs,
        day_start: EpochMs,
        windows: (Option<u32>, Option<u32>),
    ) -> Result<Standing, StoreError> {
        let key = self
            .usage(provider, key_id, None, now, day_start, windows.0)
            .await?;
        let route = self
            .usage(provider, key_id, Some(route_id), now, day_start, windows.1)
            .await?;
        let (other_holders,): (i64,) = sqlx::query_as(OTHER_HOLDERS.text(self.backend))
            .bind(provider)
            .bind(key_id)
            .bind(now)
            .bind(holder)
            .fetch_one(&self.pool)
            .await?;
        Ok(Standing {
            key,
            route,
            other_holders: other_holders.max(0) as u64,
        })
    }

    /// The end of what the provider said is left, when it has been used up since it was said.
    pub async fn provider_hint_blocks_until(
        &self,
        provider: &str,
        key_id: &str,
        route_id: &str,
        now: EpochMs,
    ) -> Result<Option<EpochMs>, StoreError> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(HINT_BLOCKS_UNTIL.text(self.backend))
            .bind(provider)
            .bind(key_id)
            .bind(route_id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|(until,)| until))
    }

    /// Settles leases their holders left behind (at their committed mark), then drops rows and
    /// buckets no window counts any more — each in batches of [`PRUNE_BATCH`] rows, every batch
    /// its own short transaction, so a large backlog never holds the write lock for long.
    pub async fn prune_ledger(&self, now: EpochMs) -> Result<Pruned, StoreError> {
        let stranded_settled = batched(self, SETTLE_STRANDED, now - STRANDED_AFTER_MS).await?;
        let rows_deleted = batched(self, DELETE_OLD_ROWS, now).await?;
        batched(self, DELETE_OLD_BUCKETS, now).await?;
        Ok(Pruned {
            stranded_settled,
            rows_deleted,
        })
    }
}

/// One ledger row as stored (tests look at the shape the ledger leaves behind).
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LeaseRow {
    pub id: i64,
    pub route_id: String,
    pub at_ms: i64,
    pub requests: i64,
    pub tokens: i64,
    pub committed_requests: i64,
    pub committed_tokens: i64,
    pub settled: i64,
    pub expires_ms: i64,
    pub holder: Option<String>,
    pub seq: Option<i64>,
}

#[cfg(test)]
impl Store {
    pub(crate) async fn lease_rows(&self) -> Vec<LeaseRow> {
        type Row = (
            i64,
            String,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, route_id, at_ms, requests, tokens, committed_requests, committed_tokens, \
                    settled, expires_ms, holder, seq FROM quota_ledger ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .expect("the ledger reads");
        rows.into_iter()
            .map(|r| LeaseRow {
                id: r.0,
                route_id: r.1,
                at_ms: r.2,
                requests: r.3,
                tokens: r.4,
                committed_requests: r.5,
                committed_tokens: r.6,
                settled: r.7,
                expires_ms: r.8,
                holder: r.9,
                seq: r.10,
            })
            .collect()
    }
}

/// Runs `statement` (bound to `at` and the batch size) until a batch touches fewer rows than that.
async fn batched(store: &Store, statement: Sql, at: EpochMs) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let done = sqlx::query(statement.text(store.backend))
            .bind(at)
            .bind(PRUNE_BATCH)
            .execute(&store.writer)
            .await?
            .rows_affected();
        total += done;
        if done < PRUNE_BATCH as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
