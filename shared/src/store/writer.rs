//! The background writer: health changes, rate-limit hints and request-log rows, written in batches
//! so no client request ever waits on SQLite.

use super::{RateLimitHint, RequestLogRow, Store};
use crate::health::HealthChange;
use crate::metrics as m;
use crate::time::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
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
///
/// Two queues, so the request path wakes nothing: a health change or a barrier wakes the writer
/// (another process may reset health any moment; a barrier's caller waits), while log rows and
/// rate-limit hints — one or more per request — wait in theirs for the next tick, unless so many
/// are waiting that the writer is told to come early.
#[derive(Clone, Debug)]
pub struct StoreWriter {
    urgent: mpsc::Sender<StoreWrite>,
    routine: mpsc::Sender<StoreWrite>,
    come_early: Arc<Notify>,
}

/// Writes waiting beyond this (in each queue) are dropped rather than letting memory grow.
const QUEUE_CAPACITY: usize = 20_000;
/// Rows in one multi-row insert (well under SQLite's bound-parameter limit).
const LOG_BATCH: usize = 500;
/// Routine writes waiting that make the writer come before its tick.
const COME_EARLY_AT: usize = 4 * LOG_BATCH;

impl StoreWriter {
    pub fn send(&self, write: StoreWrite) {
        let urgent = matches!(write, StoreWrite::Health(_) | StoreWrite::Barrier(_));
        let queue = if urgent { &self.urgent } else { &self.routine };
        if queue.try_send(write).is_err() {
            metrics::counter!(m::STORE_WRITE_ERRORS_TOTAL, "kind" => "queue_full").increment(1);
        }
        if !urgent && QUEUE_CAPACITY - self.routine.capacity() >= COME_EARLY_AT {
            self.come_early.notify_one();
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
        if self.urgent.try_send(StoreWrite::Barrier(done)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(patience, landed).await, Ok(Ok(())))
    }
}

/// Starts the writer; it flushes every `flush_every`, at once for an urgent write, and once more
/// when `token` is cancelled.
pub fn spawn_writer(
    store: Store,
    flush_every: Duration,
    token: CancellationToken,
) -> (StoreWriter, JoinHandle<()>) {
    let (urgent, mut urgent_rx) = mpsc::channel(QUEUE_CAPACITY);
    let (routine, mut routine_rx) = mpsc::channel(QUEUE_CAPACITY);
    let come_early = Arc::new(Notify::new());
    let writer = StoreWriter {
        urgent,
        routine,
        come_early: come_early.clone(),
    };
    let task = tokio::spawn(async move {
        let mut batch = Vec::new();
        let mut next_flush = tokio::time::Instant::now() + flush_every;
        loop {
            // The routine queue is only drained here, never awaited: queuing a log row wakes nothing.
            let cancelled = tokio::select! {
                _ = token.cancelled() => true,
                _ = tokio::time::sleep_until(next_flush) => false,
                _ = come_early.notified() => false,
                write = urgent_rx.recv() => match write {
                    Some(write) => {
                        batch.push(write);
                        false
                    }
                    None => true,
                },
            };
            while let Ok(write) = urgent_rx.try_recv() {
                batch.push(write);
            }
            while let Ok(write) = routine_rx.try_recv() {
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
    (writer, task)
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

    on_both_backends! {
        async fn log_rows_wait_for_the_tick_or_an_urgent_write_and_a_backlog_comes_early(store: Store) {
            let token = CancellationToken::new();
            let (writer, task) = spawn_writer(store.clone(), Duration::from_secs(3600), token.clone());
            writer.send(StoreWrite::Log(row("alone")));
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(store.count_request_logs().await.unwrap(), 0, "a row waits for the tick");
            writer.health(HealthChange::KeyValid { provider: "p".into(), key_id: "k".into() });
            logs_reach(&store, 1).await;
            for i in 0..COME_EARLY_AT {
                writer.send(StoreWrite::Log(row(&format!("backlog-{i}"))));
            }
            logs_reach(&store, 1 + COME_EARLY_AT as i64).await;
            token.cancel();
            task.await.unwrap();
        }
    }

    fn row(id: &str) -> RequestLogRow {
        RequestLogRow {
            request_id: id.into(),
            at_ms: now_ms(),
            endpoint: "chat_completions".into(),
            requested_model: "auto".into(),
            route_id: None,
            provider: None,
            attempts: 0,
            status: 200,
            outcome: "ok".into(),
            error_class: None,
            latency_ms: 1,
            ttft_ms: None,
            tokens_in: None,
            tokens_out: None,
            stream: false,
            trail: String::new(),
        }
    }

    /// Waits (at most 5 s, the tick being an hour away) until the store holds `rows` log rows.
    async fn logs_reach(store: &Store, rows: i64) {
        let started = std::time::Instant::now();
        while store.count_request_logs().await.unwrap() < rows {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{rows} rows never landed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
