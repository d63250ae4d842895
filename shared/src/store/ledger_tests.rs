//! The ledger's statements against a real SQLite file and a real PostgreSQL database: grants checked for a block, second tries,
//! what each state of a lease counts, the running totals, pruning in batches, bounded reads.

use super::super::Store;
use super::super::ledger_sql::GRANT;
use super::*;
use crate::store::testing::on_both_backends;
use std::time::Duration;

const MIDNIGHT: EpochMs = 1_798_761_600_000; // 2027-01-01T00:00:00Z

/// The key `ask` asks on.
fn key() -> LeaseKey {
    LeaseKey::new("p", "k")
}

fn ask(seq: i64, now: EpochMs, requests: u64, tokens: u64) -> LeaseAsk {
    LeaseAsk {
        provider: "p".into(),
        key_id: "k".into(),
        route_id: "p/m".into(),
        holder: "h".into(),
        seq,
        now,
        expires_ms: now + 5_000,
        day_start: MIDNIGHT,
        requests,
        tokens,
        min_tokens: 10,
        committed_requests: 2,
        committed_tokens: 20,
        key_limits: Limits::default(),
        route_limits: Limits::default(),
    }
}

async fn key_usage(store: &Store, now: EpochMs) -> Usage {
    store
        .usage("p", "k", None, now, MIDNIGHT, None)
        .await
        .unwrap()
}

on_both_backends! {
    async fn a_lease_takes_what_every_limit_has_room_for_and_nothing_below_one_request(store: Store) {
        let limits = |mut a: LeaseAsk| {
            a.key_limits = Limits {
                rpm: Some(10),
                tpm: Some(1_000),
                ..Limits::default()
            };
            a.route_limits = Limits {
                rpd: Some(6),
                ..Limits::default()
            };
            a
        };
        let first = store
            .grant_lease(limits(ask(1, MIDNIGHT, 8, 400)))
            .await
            .unwrap()
            .expect("granted");
        assert_eq!(
            (first.requests, first.tokens),
            (6, 400),
            "the route's 6 a day bind"
        );
        assert_eq!((first.committed_requests, first.committed_tokens), (2, 20));
        assert_eq!(
            store
                .grant_lease(limits(ask(2, MIDNIGHT + 1, 8, 400)))
                .await
                .unwrap(),
            None,
            "no request left on the route"
        );
        // On another route the key's own room is left: 4 requests, 600 tokens.
        let mut other = limits(ask(3, MIDNIGHT + 2, 8, 800));
        other.route_id = "p/other".into();
        other.route_limits = Limits::default();
        let second = store.grant_lease(other.clone()).await.unwrap().unwrap();
        assert_eq!((second.requests, second.tokens), (4, 600));
        other.seq = 4;
        assert_eq!(store.grant_lease(other).await.unwrap(), None);
        let used = key_usage(&store, MIDNIGHT + 3).await;
        assert_eq!((used.minute_requests, used.minute_tokens), (10, 1_000));
}
}

on_both_backends! {
    async fn a_second_try_of_one_lease_lands_once_and_is_answered_with_the_first(store: Store) {
        let first = store.grant_lease(ask(7, MIDNIGHT, 5, 50)).await.unwrap();
        let again = store.grant_lease(ask(7, MIDNIGHT, 5, 50)).await.unwrap();
        assert_eq!(first, again);
        let used = UnreservedUse {
            provider: "p".into(),
            key_id: "k".into(),
            route_id: "p/m".into(),
            holder: "h".into(),
            seq: 8,
            at_ms: MIDNIGHT,
            requests: 3,
            tokens: 30,
        };
        store.record_unreserved(used.clone()).await.unwrap();
        store.record_unreserved(used).await.unwrap();
        assert_eq!(store.lease_rows().await.len(), 2);
        let counted = key_usage(&store, MIDNIGHT + 1).await;
        assert_eq!((counted.day_requests, counted.day_tokens), (8, 80));
}
}

on_both_backends! {
    async fn a_live_lease_counts_its_block_an_expired_one_its_committed_mark_a_settled_one_its_use(store: Store) {
        let lease = store
            .grant_lease(ask(1, MIDNIGHT, 10, 100))
            .await
            .unwrap()
            .unwrap();
        let live = key_usage(&store, MIDNIGHT + 1).await;
        assert_eq!((live.minute_requests, live.day_tokens), (10, 100));
        store.commit_lease(&key(), lease.id, 5, 50).await.unwrap();
        store.commit_lease(&key(), lease.id, 3, 30).await.unwrap();
        let expired = key_usage(&store, MIDNIGHT + 5_000).await;
        assert_eq!(
            (expired.minute_requests, expired.minute_tokens),
            (5, 50),
            "the mark never goes down"
        );
        assert_eq!((expired.day_requests, expired.day_tokens), (5, 50));
        // Dated at its expiry, it counts in the minute until a minute after that.
        assert_eq!(expired.minute_oldest_ms, Some(MIDNIGHT + 5_000));
        store
            .close_lease(&key(), LeaseClose {
                id: lease.id,
                requests: 4,
                tokens: 37,
                at_ms: MIDNIGHT + 1_200,
            })
            .await
            .unwrap();
        let settled = key_usage(&store, MIDNIGHT + 6_000).await;
        assert_eq!((settled.minute_requests, settled.minute_tokens), (4, 37));
        assert_eq!(settled.minute_oldest_ms, Some(MIDNIGHT + 1_200));
        assert_eq!(
            key_usage(&store, MIDNIGHT + 61_200).await.minute_requests,
            0
        );
        store.adjust_lease(&key(), lease.id, -1, 3).await.unwrap();
        let corrected = key_usage(&store, MIDNIGHT + 6_000).await;
        assert_eq!((corrected.day_requests, corrected.day_tokens), (3, 40));
        // A lease nothing was handed out from leaves nothing behind.
        let unused = store
            .grant_lease(ask(2, MIDNIGHT, 10, 100))
            .await
            .unwrap()
            .unwrap();
        store
            .close_lease(&key(), LeaseClose {
                id: unused.id,
                requests: 0,
                tokens: 0,
                at_ms: 0,
            })
            .await
            .unwrap();
        assert_eq!(store.lease_rows().await.len(), 1);
}
}

/// What the rows say, counted the slow way: live leases whole, expired unsettled ones at their
/// mark, settled ones at their use.
fn counted_by_rows(rows: &[LeaseRow], now: EpochMs, route: Option<&str>) -> (i64, i64, i64, i64) {
    let mut sum = (0, 0, 0, 0);
    for row in rows
        .iter()
        .filter(|r| route.is_none_or(|id| r.route_id == id))
    {
        let (requests, tokens) = if row.settled == 0 && row.expires_ms <= now {
            (row.committed_requests, row.committed_tokens)
        } else {
            (row.requests, row.tokens)
        };
        if row.at_ms > now - 60_000 {
            sum.0 += requests;
            sum.1 += tokens;
        }
        if row.at_ms >= MIDNIGHT {
            sum.2 += requests;
            sum.3 += tokens;
        }
    }
    sum
}

on_both_backends! {
    async fn the_running_totals_agree_with_the_rows_through_grants_marks_settles_corrections_and_pruning(store: Store) {
        let routes = ["p/a", "p/b"];
        for i in 0..40_i64 {
            let now = MIDNIGHT + i * 1_597;
            let mut a = ask(i, now, 1 + (i as u64 % 7), 50 + i as u64);
            a.route_id = routes[i as usize % 2].into();
            let lease = store.grant_lease(a).await.unwrap().unwrap();
            match i % 5 {
                0 => store.commit_lease(&key(), lease.id, 4, 40).await.unwrap(),
                1 => store
                    .close_lease(&key(), LeaseClose {
                        id: lease.id,
                        requests: lease.requests / 2,
                        tokens: 17,
                        at_ms: now + 700,
                    })
                    .await
                    .unwrap(),
                2 => {
                    store
                        .close_lease(&key(), LeaseClose {
                            id: lease.id,
                            requests: lease.requests,
                            tokens: 99,
                            at_ms: now + 1_300,
                        })
                        .await
                        .unwrap();
                    store.adjust_lease(&key(), lease.id, -1, -20).await.unwrap();
                }
                _ => {} // left live, or to expire at its mark
            }
        }
        let rows = store.lease_rows().await;
        for now in [MIDNIGHT + 30_000, MIDNIGHT + 64_123, MIDNIGHT + 90_000] {
            for route in [None, Some("p/a"), Some("p/b")] {
                let used = store.usage("p", "k", route, now, MIDNIGHT, None).await.unwrap();
                let by_rows = counted_by_rows(&rows, now, route);
                assert_eq!(
                    (
                        used.minute_requests as i64,
                        used.minute_tokens as i64,
                        used.day_requests as i64,
                        used.day_tokens as i64
                    ),
                    by_rows,
                    "at {now} on {route:?}"
                );
            }
        }
        // Pruning settles the stranded leases at their mark: nothing counted changes.
        let later = MIDNIGHT + 300_000;
        let before = key_usage(&store, later).await;
        let pruned = store.prune_ledger(later).await.unwrap();
        assert!(pruned.stranded_settled > 0);
        assert_eq!(key_usage(&store, later).await, before);
        assert!(store.lease_rows().await.iter().all(|r| r.settled == 1));
}
}

on_both_backends! {
    async fn pruning_deletes_old_rows_and_buckets_in_bounded_batches(store: Store) {
        let rows = 2 * PRUNE_BATCH + 17;
        let writes: Vec<_> = (0..rows)
            .map(|i| {
                store.record_unreserved(UnreservedUse {
                    provider: "p".into(),
                    key_id: "k".into(),
                    route_id: "p/m".into(),
                    holder: "h".into(),
                    seq: i,
                    at_ms: MIDNIGHT + i * 1_000,
                    requests: 1,
                    tokens: 10,
                })
            })
            .collect();
        for write in writes {
            write.await.unwrap();
        }
        let three_days = MIDNIGHT + 3 * 86_400_000;
        let pruned = store.prune_ledger(three_days).await.unwrap();
        assert_eq!(pruned.rows_deleted, rows as u64);
        assert!(store.lease_rows().await.is_empty());
        let buckets = |store: Store| async move {
            let (grains,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM quota_buckets WHERE grain < 3600000",
            )
            .fetch_one(&store.pool)
            .await
            .unwrap();
            let (hours,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM quota_buckets WHERE grain = 3600000",
            )
            .fetch_one(&store.pool)
            .await
            .unwrap();
            (grains, hours)
        };
        // The rows' hour (the key's and the route's) still counts for the month.
        assert_eq!(buckets(store.clone()).await, (0, 2));
        store.prune_ledger(MIDNIGHT + 33 * 86_400_000).await.unwrap();
        assert_eq!(buckets(store.clone()).await, (0, 0));
}
}

/// Every ledger lookup of a grant is bounded by time (or by the few unsettled rows), so its
/// cost does not grow with the day's traffic.
#[tokio::test]
async fn a_grant_reads_only_recent_buckets_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("plan.db"), Duration::from_secs(5))
        .await
        .unwrap();
    let explain = format!("EXPLAIN QUERY PLAN {}", GRANT.sqlite);
    let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain))
        .bind("p")
        .bind("k")
        .bind("p/m")
        .bind(1_000_000_i64);
    for _ in 5..=19 {
        query = query.bind(1_i64);
    }
    let plan = query
        .bind("holder")
        .bind(1_i64)
        .fetch_all(&store.pool)
        .await
        .unwrap();
    let reads: Vec<&str> = plan
        .iter()
        .map(|(_, _, _, detail)| detail.as_str())
        .filter(|d| d.contains("quota_ledger") || d.contains("quota_buckets") || d.contains(" b "))
        .collect();
    assert!(!reads.is_empty());
    for read in reads {
        let bounded = read.contains("at_ms>")
            || read.contains("start_ms>")
            || read.contains("quota_ledger_unsettled");
        assert!(
            bounded && !read.starts_with("SCAN"),
            "unbounded read: {read}"
        );
    }
}

on_both_backends! {
    /// Three processes' stores (three pools, as three hosts have) asking at once for more than a
    /// key's minute holds: together they are granted exactly the minute, never a request more.
    async fn grants_from_three_stores_at_once_never_pass_the_keys_minute_together(store: Store) {
        let mut stores = vec![store.clone()];
        for _ in 0..2 {
            stores.push(Store::open(store.database(), Duration::from_secs(5)).await.unwrap());
        }
        let mut asks = Vec::new();
        for (holder, store) in stores.iter().enumerate() {
            for seq in 0..20 {
                let mut lease = ask(seq, MIDNIGHT, 3, 30);
                lease.holder = format!("host-{holder}");
                lease.key_limits = Limits {
                    rpm: Some(50),
                    ..Limits::default()
                };
                let store = store.clone();
                asks.push(tokio::spawn(async move {
                    store
                        .grant_lease(lease)
                        .await
                        .unwrap()
                        .map_or(0, |grant| grant.requests)
                }));
            }
        }
        let mut granted = 0;
        for ask in asks {
            granted += ask.await.unwrap();
        }
        assert_eq!(granted, 50, "180 requests asked of a 50 RPM key");
        assert_eq!(key_usage(&store, MIDNIGHT).await.minute_requests, 50);
    }
}

on_both_backends! {
    /// A monthly limit counts every day of the calendar month — rows the pruner has long deleted
    /// included — and nothing of the month before.
    async fn a_monthly_limit_counts_across_days_and_pruning_and_returns_on_the_first_of_the_month(
        store: Store
    ) {
        const DAY: EpochMs = 86_400_000;
        let december = MIDNIGHT - 31 * DAY;
        let one = |seq: i64, now: EpochMs| {
            let mut lease = ask(seq, now, 1, 10);
            lease.day_start = now - now.rem_euclid(DAY);
            lease.key_limits = Limits {
                rpmonth: Some(3),
                rpd: Some(100),
                ..Limits::default()
            };
            lease
        };
        for (seq, day) in [(1, 0), (2, 1), (3, 1)] {
            let now = december + day * DAY + 3_600_000;
            let grant = store.grant_lease(one(seq, now)).await.unwrap().unwrap();
            assert_eq!(grant.requests, 1);
            store
                .close_lease(&key(), LeaseClose {
                    id: grant.id,
                    requests: 1,
                    tokens: 10,
                    at_ms: now,
                })
                .await
                .unwrap();
        }
        // Three weeks on, the rows are gone from the ledger, not from the month.
        let later = december + 20 * DAY;
        assert_eq!(store.prune_ledger(later).await.unwrap().rows_deleted, 3);
        let usage = store.usage("p", "k", None, later, later - later.rem_euclid(DAY), None).await.unwrap();
        assert_eq!((usage.month_requests, usage.day_requests), (3, 0));
        assert_eq!(store.grant_lease(one(4, later)).await.unwrap(), None);
        assert_eq!(store.grant_lease(one(5, MIDNIGHT - 1)).await.unwrap(), None);
        // January: a new month.
        let january = store.grant_lease(one(6, MIDNIGHT)).await.unwrap();
        assert_eq!(january.map(|g| g.requests), Some(1));
        let usage = store.usage("p", "k", None, MIDNIGHT + 1, MIDNIGHT, None).await.unwrap();
        assert_eq!(usage.month_requests, 1);
    }
}

on_both_backends! {
    /// A rolling window counts what was sent in its last hours, the key's and a route's each over
    /// its own length, and frees as the oldest use leaves it; a window longer than the minute
    /// buckets' two days is counted from the hourly ones, after the pruner deleted the rows.
    async fn a_rolling_window_counts_its_last_hours_for_the_key_and_the_route_each_over_its_own_length(
        store: Store
    ) {
        const HOUR: EpochMs = 3_600_000;
        let t0 = MIDNIGHT + 10 * 60_000 + 7_000;
        let one = |seq: i64, now: EpochMs, route_hours: Option<u32>| {
            let mut lease = ask(seq, now, 1, 10);
            lease.committed_requests = 1;
            lease.committed_tokens = 10;
            lease.day_start = now - now.rem_euclid(86_400_000);
            lease.key_limits = Limits {
                window_hours: Some(5),
                rpwindow: Some(3),
                ..Limits::default()
            };
            lease.route_limits = Limits {
                window_hours: route_hours,
                rpwindow: route_hours.map(|_| 1),
                ..Limits::default()
            };
            lease
        };
        let send = |seq: i64, now: EpochMs, route_hours: Option<u32>| {
            let store = store.clone();
            async move {
                let grant = store.grant_lease(one(seq, now, route_hours)).await.unwrap()?;
                store
                    .close_lease(&key(), LeaseClose { id: grant.id, requests: 1, tokens: 10, at_ms: now })
                    .await
                    .unwrap();
                Some(grant.requests)
            }
        };
        for (seq, hours) in [(1, 0), (2, 1), (3, 2)] {
            assert_eq!(send(seq, t0 + hours * HOUR, None).await, Some(1));
        }
        assert_eq!(send(4, t0 + 4 * HOUR, None).await, None, "3 in the last 5 hours");
        let usage = store.usage("p", "k", None, t0 + 4 * HOUR, MIDNIGHT, Some(5)).await.unwrap();
        assert_eq!((usage.window_requests, usage.window_tokens), (3, 30));
        assert_eq!(usage.window_oldest_ms, Some(MIDNIGHT + 10 * 60_000));
        // 00:10's minute leaves the window once it starts at 00:11, at 05:11.
        let frees = MIDNIGHT + 5 * HOUR + 11 * 60_000;
        assert_eq!(send(5, frees - 1, None).await, None);
        assert_eq!(send(6, frees, None).await, Some(1));

        // The route's own window of one hour, one request: the key's five hours still count.
        let route_t = frees + 30 * 60_000;
        assert_eq!(send(7, route_t - 29 * 60_000, Some(1)).await, None, "the key's window is full");
        let later = t0 + 7 * HOUR + 20 * 60_000;
        assert_eq!(send(8, later, Some(1)).await, Some(1), "01:10 has left the key's window");
        assert_eq!(send(9, later + 30 * 60_000, Some(1)).await, None, "the route's hour");
        assert_eq!(send(10, later + 61 * 60_000, Some(1)).await, Some(1));

        // A lease whose holder vanished counts what it had committed, in the window too.
        let mut stranded = one(11, later + 2 * HOUR, None);
        stranded.provider = "q".into();
        stranded.requests = 3;
        stranded.key_limits.rpwindow = Some(10);
        let lease = store.grant_lease(stranded).await.unwrap().unwrap();
        assert_eq!((lease.requests, lease.committed_requests), (3, 1));
        let after_expiry = later + 2 * HOUR + 60_000;
        let usage = store.usage("q", "k", None, after_expiry, MIDNIGHT, Some(5)).await.unwrap();
        assert_eq!(usage.window_requests, 1, "its committed one, not its block of three");

        // A week-long window sums the hourly buckets, which outlive the pruned rows and minutes.
        let week = |seq: i64, now: EpochMs| {
            let mut lease = ask(seq, now, 1, 10);
            lease.key_id = "w".into();
            lease.day_start = now - now.rem_euclid(86_400_000);
            lease.key_limits = Limits {
                window_hours: Some(168),
                rpwindow: Some(2),
                ..Limits::default()
            };
            lease
        };
        for (seq, day) in [(20, 0), (21, 1)] {
            let now = MIDNIGHT + day * 86_400_000 + HOUR;
            let grant = store.grant_lease(week(seq, now)).await.unwrap().unwrap();
            store
                .close_lease(&LeaseKey::new("p", "w"), LeaseClose { id: grant.id, requests: 1, tokens: 10, at_ms: now })
                .await
                .unwrap();
        }
        let day_five = MIDNIGHT + 5 * 86_400_000;
        assert!(store.prune_ledger(day_five).await.unwrap().rows_deleted >= 2);
        assert_eq!(store.grant_lease(week(22, day_five)).await.unwrap(), None);
        let usage = store.usage("p", "w", None, day_five, day_five, Some(168)).await.unwrap();
        assert_eq!(usage.window_requests, 2);
        // The first hour leaves the week at 01:00 + 1 h + 168 h.
        let week_on = MIDNIGHT + 7 * 86_400_000 + 2 * HOUR;
        assert_eq!(store.grant_lease(week(23, week_on - 1)).await.unwrap(), None);
        assert!(store.grant_lease(week(24, week_on)).await.unwrap().is_some());
    }
}

/// Another host's transaction holding the key's lock, as a batch of its would.
async fn hold_the_keys_lock(url: &str, provider: &str, key_id: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut other_host = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other_host).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(serial_key(provider, key_id))
        .execute(&mut other_host)
        .await
        .unwrap();
    other_host
}

#[tokio::test]
async fn on_postgres_every_write_of_a_keys_leases_waits_for_the_host_holding_the_keys_lock() {
    // Were settles and raises to touch rows without the lock, two hosts' batches could lock the
    // running totals in opposite orders: a deadlock PostgreSQL breaks only after a second.
    let Some(url) = crate::store::testing::fresh_postgres_url("lease_lock").await else {
        return;
    };
    let store = Store::open(crate::store::Database::parse(&url), Duration::from_secs(5))
        .await
        .unwrap();
    let lease = store
        .grant_lease(ask(1, MIDNIGHT, 10, 100))
        .await
        .unwrap()
        .unwrap();
    let close = |requests| LeaseClose {
        id: lease.id,
        requests,
        tokens: requests * 10,
        at_ms: MIDNIGHT + 100,
    };
    // Each write is queued only once the other host holds the lock.
    let write = |what: &str| -> BoxFuture<'static, Result<(), StoreError>> {
        match what {
            "a raise" => Box::pin(store.commit_lease(&key(), lease.id, 2, 20)),
            "a seal" => Box::pin(store.seal_lease(&key(), close(3))),
            "a settle" => Box::pin(store.close_lease(&key(), close(3))),
            "a correction" => Box::pin(store.adjust_lease(&key(), lease.id, -1, -10)),
            _ => Box::pin(store.record_unreserved(UnreservedUse {
                provider: "p".into(),
                key_id: "k".into(),
                route_id: "p/m".into(),
                holder: "h".into(),
                seq: 2,
                at_ms: MIDNIGHT,
                requests: 1,
                tokens: 10,
            })),
        }
    };
    for what in [
        "a raise",
        "a seal",
        "a settle",
        "a correction",
        "unreserved use",
    ] {
        let other_host = hold_the_keys_lock(&url, "p", "k").await;
        let mut write = tokio::spawn(write(what));
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut write)
                .await
                .is_err(),
            "{what} waits for the key's lock"
        );
        sqlx::query("COMMIT")
            .execute(&mut { other_host })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), write)
            .await
            .unwrap_or_else(|_| panic!("{what} goes on once the lock is let go"))
            .unwrap()
            .unwrap();
    }
    let used = key_usage(&store, MIDNIGHT + 1).await;
    assert_eq!(
        (used.day_requests, used.day_tokens),
        (3, 30),
        "three settled, one taken back, one unreserved"
    );
    // Another key's writes never wait for it.
    let _other_host = hold_the_keys_lock(&url, "p", "other").await;
    tokio::time::timeout(
        Duration::from_secs(5),
        store.adjust_lease(&key(), lease.id, 0, 0),
    )
    .await
    .expect("a write of another key")
    .unwrap();
}
