//! The windows as before leases: the sliding minute, the day reset, route limits, tokens, hints.

use super::*;
use crate::config::Limits;
use crate::quota::window::{DAY_MS, MINUTE_MS};
use crate::quota::*;
use crate::time::EpochMs;

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
async fn the_share_of_a_day_left_falls_with_each_request_and_returns_when_the_day_turns() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = ledger(&dir).await;
    let p = provider(
        Limits {
            rpd: Some(10),
            ..Limits::default()
        },
        0,
    );
    let r = route("m", Limits::default());
    let unlimited = route(
        "n",
        Limits {
            rpm: Some(100),
            ..Limits::default()
        },
    );
    assert_eq!(ledger.day_share_left(&p, &r, "k", MIDNIGHT), Some(1.0));
    for i in 0..8 {
        let grant = ledger.reserve(&p, &r, "k", 1, MIDNIGHT + i * 1_000).await;
        assert!(granted(&grant.unwrap()));
    }
    let share = ledger
        .day_share_left(&p, &r, "k", MIDNIGHT + 9_000)
        .unwrap();
    assert!((share - 0.2).abs() < 1e-9, "two of ten left: {share}");
    // Without a daily request limit there is no reserve to keep.
    let no_day = provider(Limits::default(), 0);
    assert_eq!(
        ledger.day_share_left(&no_day, &unlimited, "k", MIDNIGHT),
        None
    );
    let next_day = MIDNIGHT + DAY_MS + 1;
    assert_eq!(ledger.day_share_left(&p, &r, "k", next_day), Some(1.0));
}
