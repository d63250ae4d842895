//! A stalled store and shutdown.

use super::*;
use crate::catalog::{Origin, Provider, RouteSeed};
use crate::config::{Limits, QuotaSettings};
use crate::quota::*;
use std::time::Duration;

#[tokio::test]
async fn shutdown_settles_every_lease_with_its_use_and_gives_the_rest_back() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(100_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let now = crate::time::now_ms();
    let mut in_flight = Vec::new();
    for i in 0..40 {
        match ledger.reserve(&p, &r, "k", 10, now + i).await.unwrap() {
            Grant::Granted(reservation) if i % 2 == 0 => ledger.settle(reservation, 4, now + i),
            Grant::Granted(reservation) => in_flight.push(reservation),
            other => panic!("{other:?}"),
        }
    }
    // The requests in flight end while shutdown waits for them.
    let ending = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            for reservation in in_flight {
                ledger.settle(reservation, 6, crate::time::now_ms());
            }
        })
    };
    let guard = HeldReservation::new(&ledger, None);
    let waiting = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.shutdown(Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    ending.await.unwrap();
    drop(guard);
    assert!(waiting.await.unwrap(), "everything ended and was written");
    let rows = store.lease_rows().await;
    assert!(rows.iter().all(|r| r.settled == 1), "{rows:?}");
    let requests: i64 = rows.iter().map(|r| r.requests).sum();
    let tokens: i64 = rows.iter().map(|r| r.tokens).sum();
    assert_eq!((requests, tokens), (40, 20 * 4 + 20 * 6));
}

/// Another connection holds the write lock: the ledger answers within its timeout — a key with
/// room for many requests goes on unreserved, a small one is skipped — and once the lock is gone
/// the unreserved use is written once, and the lease asked for during the stall is used, not lost.
#[tokio::test]
async fn a_stalled_store_answers_within_the_timeout_and_writes_what_went_unreserved_once() {
    use sqlx::{ConnectOptions, Connection};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let ledger = Ledger::new(
        store.clone(),
        QuotaSettings {
            reserve_timeout_ms: 100,
            ..settings()
        },
    );
    let big = provider(
        Limits {
            rpd: Some(1_000_000),
            ..Limits::default()
        },
        0,
    );
    let small = Provider {
        name: "small".into(),
        ..provider(rpm(5), 0)
    };
    let r = route("m", Limits::default());
    let small_route = RouteSeed {
        provider: "small".into(),
        ..route_seed("m")
    }
    .into_route(Origin::Manual, true, 1);
    // Both keys seen once before the stall (a first request each, settled).
    for (p, r) in [(&big, &r), (&small, &small_route)] {
        let Grant::Granted(first) = ledger.reserve(p, r, "k", 10, MIDNIGHT).await.unwrap() else {
            panic!("granted")
        };
        ledger.settle(first, 10, MIDNIGHT);
    }
    written(&store).await;
    ledger.maintain(MIDNIGHT + TTL, true).await;
    written(&store).await;

    let mut outside = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("q.db"))
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut outside)
        .await
        .unwrap();
    let now = MIDNIGHT + TTL + 1;
    let started = std::time::Instant::now();
    let mut sent = 0;
    for i in 0..20 {
        match ledger.reserve(&big, &r, "k", 10, now + i).await.unwrap() {
            Grant::Granted(reservation) => {
                assert!(reservation.unreserved() || i == 0);
                ledger.settle(reservation, 8, now + i);
                sent += 1;
            }
            other => panic!("a large key goes on: {other:?}"),
        }
    }
    let skipped = ledger
        .reserve(&small, &small_route, "k", 10, now)
        .await
        .unwrap();
    assert!(
        matches!(skipped, Grant::Stalled { retry_at_ms } if (now + 1_100..now + 3_000).contains(&retry_at_ms)),
        "a small key is skipped for a second after the wait: {skipped:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "every answer within the timeout, not the lock's busy wait: {:?}",
        started.elapsed()
    );
    assert_eq!(sent, 20);
    ledger.maintain(now + 50, false).await;
    sqlx::query("COMMIT").execute(&mut outside).await.unwrap();
    outside.close().await.unwrap();
    // The unreserved use is written by the next passes, once; the stalled ask lands too.
    ledger.maintain(now + 100, false).await;
    assert!(ledger.shutdown(Duration::from_secs(10)).await);
    let counted = key_usage(&store, now + 200).await;
    let rows = store.lease_rows().await;
    assert_eq!(
        counted.day_requests,
        1 + 20,
        "every request counted exactly once: {rows:?}"
    );
    let mut seqs: Vec<_> = rows.iter().filter_map(|r| r.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), rows.len(), "no write landed twice: {rows:?}");
}
