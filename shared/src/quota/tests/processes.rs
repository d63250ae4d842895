//! Several "processes" (ledgers on their own `Store`s) on one file.

use super::*;
use crate::config::Limits;
use crate::quota::*;

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
        ..Limits::default()
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
