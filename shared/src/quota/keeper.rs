//! The background pass (expired leases settled, unwritten use written, keys re-read into view)
//! and the shutdown sequence.

use super::ledger::{Inner, Ledger, lock};
use super::seen::Sighting;
use super::window::day_window_start;
use super::writes::Write;
use crate::time::{EpochMs, now_ms};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the background pass looks for expired leases and unwritten use.
const TICK: Duration = Duration::from_millis(200);
/// A slot whose last lease ended longer ago than this is not re-read in the background.
const ACTIVE_MS: EpochMs = 60_000;

impl Ledger {
    /// One background pass at `now`: expired leases settled, unwritten use written, and — when
    /// `refresh` — every key in view re-read from the store.
    pub async fn maintain(&self, now: EpochMs, refresh: bool) {
        self.inner.maintain(now, refresh).await;
    }

    /// Runs [`Ledger::maintain`] on a timer until the ledger is shut down or dropped.
    pub fn spawn_keeper(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let stop = self.inner.draining.clone();
        let refresh_every = Duration::from_millis(self.inner.settings.refresh_ms.max(50));
        tokio::spawn(async move {
            let mut last_refresh: Option<Instant> = None;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                let refresh = last_refresh.is_none_or(|at| at.elapsed() >= refresh_every);
                if refresh {
                    last_refresh = Some(Instant::now());
                }
                inner.maintain(now_ms(), refresh).await;
            }
        })
    }

    /// Shutdown: asks requests still running to end, waits (at most `wait`) until they have, then
    /// settles every lease with its exact use (requests still in flight at their estimates), writes
    /// what was sent unreserved, and waits (at most `wait` again) for those writes. `false` when a
    /// wait ran out.
    pub async fn shutdown(&self, wait: Duration) -> bool {
        let inner = &self.inner;
        inner.draining.cancel();
        inner.requests.close();
        let requests_ended = tokio::time::timeout(wait, inner.requests.wait())
            .await
            .is_ok();
        let now = now_ms();
        let mut writes = Vec::new();
        for cell in inner.cells() {
            let mut slot = cell.lock();
            writes.extend(
                slot.close_all()
                    .into_iter()
                    .map(|close| Write::Close(cell.clone(), close)),
            );
            // Unreserved requests still in flight count at their estimates.
            let unreserved = &mut slot.unreserved;
            unreserved.ended_requests += std::mem::take(&mut unreserved.in_flight_requests);
            unreserved.ended_tokens += std::mem::take(&mut unreserved.in_flight_tokens);
            drop(slot);
            inner.write_unreserved(&cell, now);
        }
        inner.dispatch(writes);
        inner.writes.close();
        let written = tokio::time::timeout(wait, inner.writes.wait())
            .await
            .is_ok();
        if !requests_ended {
            tracing::warn!("shutdown: requests still running were settled at their estimates");
        }
        if !written {
            tracing::warn!("shutdown: the store did not take the ledger's last writes in time");
        }
        requests_ended && written
    }
}

impl Inner {
    async fn maintain(self: &Arc<Self>, now: EpochMs, refresh: bool) {
        let mut writes = Vec::new();
        let cells = self.cells();
        for cell in &cells {
            let mut slot = cell.lock();
            writes.extend(
                slot.expire(now)
                    .into_iter()
                    .map(|close| Write::Close(cell.clone(), close)),
            );
            drop(slot);
            self.write_unreserved(cell, now);
        }
        self.dispatch(writes);
        if !refresh {
            return;
        }
        for cell in &cells {
            let (day_reset_minute, active) = {
                let slot = cell.lock();
                let recent = slot
                    .last_lease
                    .is_some_and(|(_, expires_ms)| expires_ms > now - ACTIVE_MS);
                (slot.day_reset_minute, recent || !slot.leases.is_empty())
            };
            // A slot idle for a while is read again when next asked for (its view is then stale).
            if !active {
                continue;
            }
            let day_start = day_window_start(now, day_reset_minute);
            if let Err(error) = self.read_standing(cell, now, day_start).await {
                tracing::debug!(%error, "refreshing a key's standing failed");
            }
        }
        let watched = lock(&self.watched).clone();
        for key in watched {
            let day_start = day_window_start(now, key.day_reset_minute);
            let read = self
                .store
                .usage(
                    &key.provider,
                    &key.key_id,
                    None,
                    now,
                    day_start,
                    key.window_hours,
                )
                .await;
            let other_holders = self
                .seen
                .get(&key.provider, &key.key_id, "*", now, day_start)
                .map_or(0, |s| s.other_holders);
            match read {
                Ok(usage) => self.seen.record(
                    &key.provider,
                    &key.key_id,
                    "*",
                    Sighting {
                        usage,
                        other_holders,
                        seen_ms: now,
                        day_start,
                    },
                ),
                Err(error) => tracing::debug!(%error, "refreshing a key's use failed"),
            }
        }
    }
}
