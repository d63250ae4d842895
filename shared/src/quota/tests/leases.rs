//! What leases add: blocks sized by the rule, committed marks, expiry, the day reset, a dead holder.

use super::*;
use crate::catalog::{Origin, Provider, RouteSeed};
use crate::config::Limits;
use crate::quota::window::DAY_MS;
use crate::quota::*;

#[tokio::test]
async fn a_small_limit_takes_one_request_per_lease_and_a_busy_key_large_leases() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    let small = provider(rpm(5), 0);
    let r = route("m", Limits::default());
    for i in 0..5 {
        let grant = ledger
            .reserve(&small, &r, "k", 10, MIDNIGHT + i * 100)
            .await;
        assert!(granted(&grant.unwrap()));
    }
    written(&store).await;
    let rows = store.lease_rows().await;
    assert_eq!(rows.len(), 5, "one lease per request: {rows:?}");
    assert!(
        rows.iter().all(|r| r.requests == 1 && r.settled == 1),
        "{rows:?}"
    );

    let big = Provider {
        name: "big".into(),
        ..provider(
            Limits {
                rpm: Some(100_000),
                rpd: Some(10_000_000),
                ..Limits::default()
            },
            0,
        )
    };
    let r = RouteSeed {
        provider: "big".into(),
        ..route_seed("m")
    }
    .into_route(Origin::Manual, true, 1);
    for i in 0..2_000 {
        // 2,000 requests at 2 a millisecond.
        let grant = ledger.reserve(&big, &r, "k", 10, MIDNIGHT + i / 2).await;
        assert!(granted(&grant.unwrap()));
    }
    written(&store).await;
    let leases = store.lease_rows().await.len() - rows.len();
    assert!(
        leases <= 40,
        "2,000 requests took {leases} leases: larger leases as the use is fast"
    );
}

#[tokio::test]
async fn a_steady_flow_asks_for_one_lease_ahead_not_one_per_request_in_the_last_quarter_of_a_lease()
{
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(10_000_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    // 40 requests a second for 60 s: a lease of about 200 (the rate × its 5 s life) lasts its
    // whole life, so the next is asked for in its last quarter, while it still has requests.
    let requests = 2_400;
    for i in 0..requests {
        let grant = ledger.reserve(&p, &r, "k", 10, MIDNIGHT + i * 25).await;
        assert!(granted(&grant.unwrap()));
        // A lease asked for lands before the next hand-out, as it does in real time (25 ms).
        written(&store).await;
    }
    written(&store).await;
    let rows = store.lease_rows().await;
    let taken: i64 = rows.iter().map(|r| r.requests).sum();
    assert!(
        rows.len() <= 30,
        "60 s of a steady flow took {} leases, {taken} requests' worth for {requests}",
        rows.len()
    );
    assert!(
        taken <= 3 * requests,
        "leases held {taken} requests' worth for {requests}: the rest was kept from other holders"
    );
}

#[tokio::test]
async fn the_committed_mark_stays_ahead_of_the_hand_outs_and_below_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(1_000_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let mut held = Vec::new();
    for i in 0..300 {
        let grant = ledger.reserve(&p, &r, "k", 10, MIDNIGHT + i).await.unwrap();
        assert!(granted(&grant));
        held.push(grant);
        if i % 50 == 49 {
            written(&store).await;
            let rows = store.lease_rows().await;
            let live: Vec<_> = rows.iter().filter(|r| r.settled == 0).collect();
            let committed: i64 = live.iter().map(|r| r.committed_requests).sum();
            let handed = i + 1;
            assert!(
                committed >= handed,
                "after {handed} hand-outs the live leases commit {committed}: {rows:?}"
            );
            let margin: i64 = live
                .iter()
                .map(|r| 3 * commit_step(r.requests as u64) as i64)
                .sum();
            assert!(
                committed - handed <= margin,
                "the mark is a margin of at most three steps a lease, not the whole block: {rows:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_dead_holders_lease_counts_whole_until_it_expires_then_only_its_committed_mark() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(10_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let mut held = Vec::new();
    for i in 0..60 {
        held.push(ledger.reserve(&p, &r, "k", 10, MIDNIGHT + i).await.unwrap());
    }
    written(&store).await;
    // The process dies: nothing it holds is settled or returned.
    std::mem::forget(held);
    std::mem::forget(ledger);
    let rows = store.lease_rows().await;
    let block: i64 = rows.iter().map(|r| r.requests).sum();
    let committed: i64 = rows.iter().map(|r| r.committed_requests).sum();
    assert!(block > committed && committed >= 60, "{rows:?}");

    let survivor = open(&dir).await;
    let live = key_usage(&survivor, MIDNIGHT + 100).await;
    assert_eq!(
        live.day_requests as i64, block,
        "live: the whole block counts"
    );
    let expired_at = rows.iter().map(|r| r.expires_ms).max().unwrap();
    let after = key_usage(&survivor, expired_at).await;
    assert_eq!(
        after.day_requests as i64, committed,
        "expired: every request it may have sent still counts, the rest is back"
    );
    assert!(
        after.day_requests as i64 - 60 <= 3 * rows.len() as i64 * commit_step(block as u64) as i64,
        "the margin is at most three steps a lease"
    );
    // The pruner settles it at its mark a minute later; the count does not move.
    survivor.prune_ledger(expired_at + 61_000).await.unwrap();
    assert_eq!(
        key_usage(&survivor, expired_at + 61_000).await.day_requests as i64,
        committed
    );
}

#[tokio::test]
async fn a_lease_expires_by_its_ttl_and_gives_its_unused_part_back() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(10_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    for i in 0..30 {
        let grant = ledger.reserve(&p, &r, "k", 10, MIDNIGHT + i).await.unwrap();
        ledger.settle(
            match grant {
                Grant::Granted(reservation) => reservation,
                other => panic!("{other:?}"),
            },
            7,
            MIDNIGHT + i,
        );
    }
    written(&store).await;
    let leased = key_usage(&store, MIDNIGHT + 100).await;
    assert!(
        leased.day_requests > 30,
        "the leases hold more than was used"
    );
    ledger.maintain(MIDNIGHT + TTL + 100, false).await;
    written(&store).await;
    let used = key_usage(&store, MIDNIGHT + TTL + 100).await;
    assert_eq!((used.day_requests, used.day_tokens), (30, 30 * 7));
    assert!(store.lease_rows().await.iter().all(|r| r.settled == 1));
}

#[tokio::test]
async fn a_lease_never_reaches_past_the_providers_day_reset() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(10_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let before = MIDNIGHT + DAY_MS - 1_000;
    let mut held = Vec::new();
    for i in 0..10 {
        held.push(ledger.reserve(&p, &r, "k", 10, before + i).await.unwrap());
    }
    written(&store).await;
    let rows = store.lease_rows().await;
    assert!(
        rows.iter()
            .all(|r| r.expires_ms < MIDNIGHT + DAY_MS && r.at_ms < MIDNIGHT + DAY_MS),
        "{rows:?}"
    );
    // Counted in the day it was used in, and not in the next one.
    assert!(key_usage(&store, before + 500).await.day_requests >= 10);
    let next = key_usage(&store, MIDNIGHT + DAY_MS).await;
    assert_eq!(next.day_requests, 0);
    assert!(granted(
        &ledger
            .reserve(&p, &r, "k", 10, MIDNIGHT + DAY_MS)
            .await
            .unwrap()
    ));
}
