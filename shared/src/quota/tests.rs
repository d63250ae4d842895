//! The ledger against real SQLite files, with time as a parameter: windows and resets as before
//! leases, and what leases add — blocks, committed marks, expiry, several processes on one file, a
//! stalled store, shutdown.

use super::window::{DAY_MS, MINUTE_MS, day_window_start};
use super::*;
use crate::catalog::{Origin, Provider, Route, RouteSeed};
use crate::config::{Limits, QuotaSettings};
use crate::store::Store;
use crate::time::EpochMs;
use std::time::Duration;

const MIDNIGHT: EpochMs = 1_798_761_600_000; // 2027-01-01T00:00:00Z
const TTL: EpochMs = 5_000;

fn settings() -> QuotaSettings {
    QuotaSettings {
        // Generous: these tests are about the ledger's counts, not about a slow machine.
        reserve_timeout_ms: 10_000,
        lease_ttl_ms: TTL as u64,
        max_lease_requests: 256,
        refresh_ms: 1_000,
        shutdown_wait_ms: 5_000,
    }
}

fn provider(limits: Limits, day_reset_minute: u32) -> Provider {
    Provider {
        limits,
        day_reset_minute,
        ..Provider::keyless("p", "http://127.0.0.1:9/v1")
    }
}

fn route(model: &str, limits: Limits) -> Route {
    RouteSeed {
        provider: "p".into(),
        model: model.into(),
        display_name: None,
        rank: Some(1),
        score: None,
        aliases: Vec::new(),
        context_window: None,
        max_output: None,
        tags: Vec::new(),
        limits: Some(limits),
    }
    .into_route(Origin::Manual, true, 1)
}

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("q.db"), Duration::from_secs(5))
        .await
        .unwrap()
}

async fn ledger(dir: &tempfile::TempDir) -> (Ledger, Store) {
    let store = open(dir).await;
    (Ledger::new(store.clone(), settings()), store)
}

fn rpm(n: u64) -> Limits {
    Limits {
        rpm: Some(n),
        ..Limits::default()
    }
}

fn granted(grant: &Grant) -> bool {
    matches!(grant, Grant::Granted(_))
}

/// Waits until the ledger's writes so far have landed (a write queued later lands after them).
async fn written(store: &Store) {
    let _ = store
        .grant_lease(crate::store::LeaseAsk {
            provider: "flush".into(),
            key_id: "flush".into(),
            route_id: "flush".into(),
            holder: "flush".into(),
            seq: rand::random::<i64>().abs(),
            now: 0,
            expires_ms: 0,
            day_start: 0,
            requests: 0,
            tokens: 0,
            min_tokens: 0,
            committed_requests: 0,
            committed_tokens: 0,
            key_limits: Limits::default(),
            route_limits: Limits::default(),
        })
        .await;
}

async fn key_usage(store: &Store, now: EpochMs) -> super::window::Usage {
    store
        .usage("p", "k", None, now, day_window_start(now, 0))
        .await
        .unwrap()
}

#[tokio::test]
async fn reservations_stop_at_the_rpm_and_resume_as_the_minute_slides() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger(&dir).await;
    let p = provider(rpm(3), 0);
    let r = route("m", Limits::default());
    for i in 0..3 {
        let grant = ledger.reserve(&p, &r, "k", 10, MIDNIGHT + i * 1_000).await;
        assert!(granted(&grant.unwrap()));
    }
    let refused = ledger.reserve(&p, &r, "k", 10, MIDNIGHT + 5_000).await;
    assert_eq!(
        refused.unwrap(),
        Grant::Refused {
            until_ms: MIDNIGHT + MINUTE_MS,
            scope: Scope::Key
        }
    );
    let other = ledger
        .reserve(&p, &r, "other-key", 10, MIDNIGHT + 5_000)
        .await;
    assert!(granted(&other.unwrap()));
    let later = ledger
        .reserve(&p, &r, "k", 10, MIDNIGHT + MINUTE_MS + 1)
        .await;
    assert!(granted(&later.unwrap()));
}

#[tokio::test]
async fn the_sliding_minute_is_exact_to_the_millisecond_inside_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger(&dir).await;
    let p = provider(rpm(2), 0);
    let r = route("m", Limits::default());
    // Two requests in the same second, 300 ms apart, each settled at once.
    for at in [MIDNIGHT + 1_200, MIDNIGHT + 1_500] {
        assert!(granted(&ledger.reserve(&p, &r, "k", 1, at).await.unwrap()));
    }
    // The first leaves the window at 61.200 s, the second at 61.500 s: not a millisecond early.
    let at = |ms| ledger.reserve(&p, &r, "k", 1, MIDNIGHT + ms);
    assert!(!granted(&at(61_199).await.unwrap()));
    assert!(granted(&at(61_200).await.unwrap()));
    assert!(!granted(&at(61_400).await.unwrap()));
}

#[tokio::test]
async fn the_day_window_resets_at_the_providers_reset_time() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger(&dir).await;
    // Resets at 08:00 UTC, 2 requests a day.
    let p = provider(
        Limits {
            rpd: Some(2),
            ..Limits::default()
        },
        480,
    );
    let r = route("m", Limits::default());
    let reset = MIDNIGHT + 8 * 60 * MINUTE_MS;
    let at = |ms: EpochMs| ledger.reserve(&p, &r, "k", 1, ms);
    assert!(granted(&at(reset - 3 * MINUTE_MS).await.unwrap()));
    assert!(granted(&at(reset - 2 * MINUTE_MS).await.unwrap()));
    assert_eq!(
        at(reset - MINUTE_MS).await.unwrap(),
        Grant::Refused {
            until_ms: reset,
            scope: Scope::Key
        }
    );
    assert!(granted(&at(reset).await.unwrap()));
    assert!(granted(&at(reset + 1).await.unwrap()));
    assert_eq!(
        at(reset + 2).await.unwrap(),
        Grant::Refused {
            until_ms: reset + DAY_MS,
            scope: Scope::Key
        }
    );
}

#[tokio::test]
async fn a_route_limit_spends_only_that_route() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger(&dir).await;
    let p = provider(Limits::default(), 0);
    let (small, other) = (route("small", rpm(1)), route("other", rpm(1)));
    assert!(granted(
        &ledger.reserve(&p, &small, "k", 1, MIDNIGHT).await.unwrap()
    ));
    assert_eq!(
        ledger
            .reserve(&p, &small, "k", 1, MIDNIGHT + 1)
            .await
            .unwrap(),
        Grant::Refused {
            until_ms: MIDNIGHT + MINUTE_MS,
            scope: Scope::Route
        }
    );
    assert!(granted(
        &ledger
            .reserve(&p, &other, "k", 1, MIDNIGHT + 1)
            .await
            .unwrap()
    ));
}

#[tokio::test]
async fn settling_counts_real_tokens_and_releasing_frees_room() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger(&dir).await;
    let p = provider(
        Limits {
            tpm: Some(1_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let Grant::Granted(first) = ledger.reserve(&p, &r, "k", 900, MIDNIGHT).await.unwrap() else {
        panic!("granted")
    };
    assert_eq!(
        ledger
            .reserve(&p, &r, "k", 200, MIDNIGHT + 1)
            .await
            .unwrap(),
        Grant::TooLargeNow,
        "a request too large for what is left does not bench the key"
    );
    ledger.settle(first, 300, MIDNIGHT + 2);
    let Grant::Granted(second) = ledger
        .reserve(&p, &r, "k", 600, MIDNIGHT + 2)
        .await
        .unwrap()
    else {
        panic!("granted")
    };
    assert!(!granted(
        &ledger
            .reserve(&p, &r, "k", 200, MIDNIGHT + 3)
            .await
            .unwrap()
    ));
    ledger.release(second, MIDNIGHT + 4);
    assert!(granted(
        &ledger
            .reserve(&p, &r, "k", 600, MIDNIGHT + 4)
            .await
            .unwrap()
    ));
}

#[tokio::test]
async fn what_the_provider_says_is_left_limits_reservations_until_its_reset() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    // No tight limits, but the provider's headers said two requests are left for 30 s.
    let p = provider(
        Limits {
            rpd: Some(1_000_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let hint = crate::store::RateLimitHint {
        provider: "p".into(),
        key_id: "k".into(),
        scope: r.route_id.clone(),
        remaining_requests: Some(2),
        remaining_tokens: None,
        reset_at_ms: Some(MIDNIGHT + 30_000),
        observed_ms: MIDNIGHT,
    };
    store
        .record_rate_limit_hints(&[hint], MIDNIGHT)
        .await
        .unwrap();
    let at = |ms: EpochMs| ledger.reserve(&p, &r, "k", 1, MIDNIGHT + ms);
    assert!(granted(&at(1).await.unwrap()));
    assert!(granted(&at(2).await.unwrap()));
    assert_eq!(
        at(3).await.unwrap(),
        Grant::Refused {
            until_ms: MIDNIGHT + 30_000,
            scope: Scope::Route
        }
    );
    assert!(granted(&at(30_000).await.unwrap()));
}

#[tokio::test]
async fn rate_limit_headers_cap_what_is_handed_out_from_memory_until_their_reset() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(1_000_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let mut held = Vec::new();
    // A fast start makes a large lease.
    for i in 0..20 {
        let grant = ledger.reserve(&p, &r, "k", 1, MIDNIGHT + i).await.unwrap();
        assert!(granted(&grant));
        held.push(grant);
    }
    ledger.observe_hint("p", "k", &r.route_id, Some(1), Some(MIDNIGHT + 10_000));
    assert!(granted(
        &ledger.reserve(&p, &r, "k", 1, MIDNIGHT + 30).await.unwrap()
    ));
    assert_eq!(
        ledger.reserve(&p, &r, "k", 1, MIDNIGHT + 31).await.unwrap(),
        Grant::Refused {
            until_ms: MIDNIGHT + 10_000,
            scope: Scope::Route
        }
    );
}

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

fn route_seed(model: &str) -> RouteSeed {
    RouteSeed {
        provider: "p".into(),
        model: model.into(),
        display_name: None,
        rank: Some(1),
        score: None,
        aliases: Vec::new(),
        context_window: None,
        max_output: None,
        tags: Vec::new(),
        limits: None,
    }
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

/// Three "processes" (ledgers on their own `Store`s) on one file, each with many requests at once,
/// settling as they go: together they never hand out more than the key's RPM, RPD or TPM allow,
/// and they hand out at least 95 % of it.
#[tokio::test]
async fn several_processes_on_one_file_never_overspend_a_key_and_spend_nearly_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        rpm: Some(300),
        rpd: Some(240),
        tpm: Some(30_000),
        tpd: None,
    };
    let p = provider(limits, 0);
    let r = route("m", Limits::default());
    let mut ledgers = Vec::new();
    for _ in 0..3 {
        ledgers.push(ledger(&dir).await.0);
    }
    let mut tasks = Vec::new();
    for (n, ledger) in ledgers.iter().enumerate() {
        for client in 0..20 {
            let (ledger, p, r) = (ledger.clone(), p.clone(), r.clone());
            tasks.push(tokio::spawn(async move {
                let (mut requests, mut tokens) = (0_u64, 0_u64);
                for i in 0.. {
                    let now = MIDNIGHT + (i * 60 + client * 3 + n as i64) % 50_000;
                    let estimate = 100 + (client as u64 % 3) * 20;
                    match ledger.reserve(&p, &r, "k", estimate, now).await.unwrap() {
                        Grant::Granted(reservation) => {
                            // The real use is a little under the estimate.
                            ledger.settle(reservation, estimate - 10, now);
                            requests += 1;
                            tokens += estimate - 10;
                        }
                        Grant::TooLargeNow => continue,
                        _ => break,
                    }
                    if i > 1_000 {
                        break;
                    }
                }
                (requests, tokens)
            }));
        }
    }
    let (mut requests, mut tokens) = (0, 0);
    for task in tasks {
        let (r, t) = task.await.unwrap();
        requests += r;
        tokens += t;
    }
    assert!(requests <= 240, "the day's 240 requests: {requests}");
    assert!(tokens <= 30_000, "the minute's 30,000 tokens: {tokens}");
    assert!(
        requests >= 228,
        "at least 95 % of the 240 requests were handed out: {requests}"
    );
}

/// The same with the tokens per minute binding: three processes hand out at most the key's TPM
/// and at least 95 % of it.
#[tokio::test]
async fn several_processes_on_one_file_never_overspend_a_keys_tpm_and_spend_nearly_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = provider(
        Limits {
            tpm: Some(12_000),
            rpd: Some(100_000),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let mut tasks = Vec::new();
    for n in 0..3 {
        let ledger = ledger(&dir).await.0;
        for client in 0..10 {
            let (ledger, p, r) = (ledger.clone(), p.clone(), r.clone());
            tasks.push(tokio::spawn(async move {
                let mut tokens = 0_u64;
                for i in 0..1_000 {
                    let now = MIDNIGHT + i * 37 + client * 3 + n;
                    match ledger.reserve(&p, &r, "k", 120, now).await.unwrap() {
                        Grant::Granted(reservation) => {
                            ledger.settle(reservation, 120, now);
                            tokens += 120;
                        }
                        _ => break,
                    }
                }
                tokens
            }));
        }
    }
    let mut tokens = 0;
    for task in tasks {
        tokens += task.await.unwrap();
    }
    assert!(tokens <= 12_000, "the minute's 12,000 tokens: {tokens}");
    assert!(tokens >= 11_400, "at least 95 % of them: {tokens}");
}

#[tokio::test]
async fn two_ledgers_on_one_file_never_overspend_a_small_key_together() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (ledger(&dir).await.0, ledger(&dir).await.0);
    let p = provider(rpm(30), 0);
    let r = route("m", Limits::default());
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (ledger, p, r) = (
            if i % 2 == 0 { a.clone() } else { b.clone() },
            p.clone(),
            r.clone(),
        );
        tasks.push(tokio::spawn(async move {
            ledger.reserve(&p, &r, "k", 1, MIDNIGHT + i).await.unwrap()
        }));
    }
    let mut grants = 0;
    let mut held = Vec::new();
    for task in tasks {
        let grant = task.await.unwrap();
        grants += granted(&grant) as usize;
        held.push(grant);
    }
    assert_eq!(grants, 30);
}

#[tokio::test]
async fn a_reservation_dropped_unresolved_is_settled_at_its_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, store) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(1),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let Grant::Granted(reservation) = ledger.reserve(&p, &r, "k", 10, MIDNIGHT).await.unwrap()
    else {
        panic!("granted")
    };
    drop(HeldReservation::new(&ledger, Some(reservation)));
    written(&store).await;
    let rows = store.lease_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].requests, rows[0].tokens, rows[0].settled),
        (1, 10, 1)
    );
    let later = MIDNIGHT + 3_600_000;
    assert!(
        !granted(&ledger.reserve(&p, &r, "k", 1, later).await.unwrap()),
        "the abandoned request still counts"
    );
}

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
    assert_eq!(
        ledger
            .reserve(&small, &small_route, "k", 10, now)
            .await
            .unwrap(),
        Grant::Stalled {
            retry_at_ms: now + 1_000
        },
        "a small key is skipped"
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
