//! The background writer: health changes, rate-limit hints and request-log rows, written in batches
//! so no client request ever waits on SQLite.

use super::{RateLimitHint, RequestLogRow, Store};
use crate::health::HealthChange;
use crate::metrics as m;
use crate::time::now_ms;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One thing to write.
#[derive(Debug)]
pub enum StoreWrite {
    Health(HealthChange),
    RateHint(RateLimitHint),
    Log(RequestLogRow),
    /// Answered once every write queued before it is written.
    Barrier(oneshot::Sender<()>),
}

/// Queues writes without waiting (cheap to clone). A full queue drops the write and counts it.
#[derive(Clone, Debug)]
pub struct StoreWriter {
    tx: mpsc::Sender<StoreWrite>,
}

/// Writes waiting beyond this are dropped rather than letting memory grow.
const QUEUE_CAPACITY: usize = 20_000;
/// Rows in one multi-row insert (well under SQLite's bound-parameter limit).
const LOG_BATCH: usize = 500;

impl StoreWriter {
    pub fn send(&self, write: StoreWrite) {
        if self.tx.try_send(write).is_err() {
            metrics::counter!(m::STORE_WRITE_ERRORS_TOTAL, "kind" => "queue_full").increment(1);
        }
    }

    pub fn health(&self, change: HealthChange) {
        self.send(StoreWrite::Health(change));
    }

    /// Waits (at most `patience`) until every write queued before this call is written, so a
    /// change made to the store directly afterwards — a health reset — is not undone by a mark
    /// that was still on its way. Whether it got there in time.
    pub async fn flushed(&self, patience: Duration) -> bool {
        let (done, landed) = oneshot::channel();
        if self.tx.try_send(StoreWrite::Barrier(done)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(patience, landed).await, Ok(Ok(())))
    }
}

/// Starts the writer; it flushes every `flush_every`, and once more when `token` is cancelled.
pub fn spawn_writer(
    store: Store,
    flush_every: Duration,
    token: CancellationToken,
) -> (StoreWriter, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel(QUEUE_CAPACITY);
    let task = tokio::spawn(async move {
        let mut batch = Vec::new();
        let mut next_flush = tokio::time::Instant::now() + flush_every;
        loop {
            // Health changes are written at once (another process may reset health any moment);
            // log rows wait for the next tick or a full batch.
            let (cancelled, urgent) = tokio::select! {
                _ = token.cancelled() => (true, true),
                _ = tokio::time::sleep_until(next_flush) => (false, true),
                write = rx.recv() => match write {
                    Some(write) => {
                        let urgent =
                            matches!(write, StoreWrite::Health(_) | StoreWrite::Barrier(_));
                        batch.push(write);
                        (false, urgent || batch.len() >= LOG_BATCH)
                    }
                    None => (true, true),
                },
            };
            if !urgent {
                continue;
            }
            while let Ok(write) = rx.try_recv() {
                batch.push(write);
            }
            if !batch.is_empty() {
                flush(&store, std::mem::take(&mut batch)).await;
            }
            if tokio::time::Instant::now() >= next_flush {
                next_flush = tokio::time::Instant::now() + flush_every;
            }
            if cancelled {
                break;
            }
        }
    });
    (StoreWriter { tx }, task)
}

async fn flush(store: &Store, batch: Vec<StoreWrite>) {
    let mut health = Vec::new();
    let mut hints: Vec<RateLimitHint> = Vec::new();
    let mut logs = Vec::new();
    let mut barriers = Vec::new();
    for write in batch {
        match write {
            StoreWrite::Health(change) => health.push(change),
            StoreWrite::RateHint(hint) => {
                hints.retain(|h| {
                    (&h.provider, &h.key_id, &h.scope)
                        != (&hint.provider, &hint.key_id, &hint.scope)
                });
                hints.push(hint);
            }
            StoreWrite::Log(row) => logs.push(row),
            StoreWrite::Barrier(done) => barriers.push(done),
        }
    }
    let now = now_ms();
    if !health.is_empty()
        && let Err(e) = store.apply_health_changes(&health, now).await
    {
        failed("health", &e);
    }
    if !hints.is_empty()
        && let Err(e) = store.record_rate_limit_hints(&hints, now).await
    {
        failed("rate_hint", &e);
    }
    for chunk in logs.chunks(LOG_BATCH) {
        if let Err(e) = store.insert_request_logs(chunk).await {
            failed("request_log", &e);
        }
    }
    for done in barriers {
        let _ = done.send(());
    }
}

fn failed(kind: &'static str, error: &super::StoreError) {
    metrics::counter!(m::STORE_WRITE_ERRORS_TOTAL, "kind" => kind).increment(1);
    tracing::warn!(kind, %error, "background write failed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::on_both_backends;

    on_both_backends! {
        async fn flushed_returns_once_every_write_queued_before_it_is_in_the_store(store: Store) {
            // A tick an hour away: only the barrier can make the hint land now.
            let token = CancellationToken::new();
            let (writer, task) = spawn_writer(store.clone(), Duration::from_secs(3600), token.clone());
            writer.send(StoreWrite::RateHint(RateLimitHint {
                provider: "p".into(),
                key_id: "k".into(),
                scope: "*".into(),
                remaining_requests: Some(7),
                remaining_tokens: None,
                reset_at_ms: None,
                observed_ms: now_ms(),
            }));
            assert!(writer.flushed(Duration::from_secs(5)).await);
            let hint = store.rate_limit_hint("p", "k", "*").await.unwrap();
            assert_eq!(hint.and_then(|h| h.remaining_requests), Some(7));
            token.cancel();
            task.await.unwrap();
    }
    }
}
