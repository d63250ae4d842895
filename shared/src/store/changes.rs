//! Changes other processes made, announced as they commit: on PostgreSQL the triggers on
//! `catalog_meta` send `NOTIFY freerouter_changes`, and a listener here wakes whoever waits, so a
//! route disabled on one host is reloaded by every other within a round trip. SQLite has no such
//! signal: its readers notice on their next poll of the version counters (`meta.rs`), which stays
//! the safety net on PostgreSQL too (a listener reconnecting after a dropped connection can miss
//! a notification).

use super::{Database, Store};
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::watch;

/// The channel the schema's triggers notify on (migrations/postgres/0001_schema.sql).
const CHANNEL: &str = "freerouter_changes";
/// The pause before listening again after the connection was lost.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Wakes when another process may have changed the catalog or health versions.
pub struct Changes {
    announced: Option<watch::Receiver<u64>>,
}

impl Changes {
    /// Resolves at the next announcement; never, on a store that has none (SQLite).
    pub async fn announced(&mut self) {
        match &mut self.announced {
            Some(announced) => {
                if announced.changed().await.is_err() {
                    // The listener is gone: fall back to polling alone.
                    self.announced = None;
                    std::future::pending::<()>().await
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl Store {
    /// Starts listening for other processes' changes (PostgreSQL); the listener stops when the
    /// returned handle is dropped.
    pub fn changes(&self) -> Changes {
        let Database::Postgres(url) = &self.database else {
            return Changes { announced: None };
        };
        let (announce, announced) = watch::channel(0_u64);
        tokio::spawn(listen(url.clone(), announce));
        Changes {
            announced: Some(announced),
        }
    }
}

async fn listen(url: String, announce: watch::Sender<u64>) {
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(CHANNEL).await {
                    tracing::warn!(%error, "cannot listen for store changes");
                } else {
                    // Whatever happened while no one listened is caught by the next announcement
                    // or poll; announce once now so a reconnect never waits for the poll.
                    announce.send_modify(|n| *n += 1);
                    loop {
                        tokio::select! {
                            _ = announce.closed() => return,
                            received = listener.recv() => match received {
                                Ok(_) => announce.send_modify(|n| *n += 1),
                                Err(error) => {
                                    tracing::warn!(%error, "lost the store-change listener; reconnecting");
                                    break;
                                }
                            },
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot connect the store-change listener"),
        }
        tokio::select! {
            _ = announce.closed() => return,
            _ = tokio::time::sleep(RECONNECT_PAUSE) => {}
        }
    }
}
