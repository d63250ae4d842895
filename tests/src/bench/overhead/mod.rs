//! What the gateway costs against calling the upstream directly, with and without the quota
//! ledger, beside a peer gateway when one is installed: CPU per request, added latency, latency at
//! a steady rate, throughput, memory, and 10 against 1,000 routes in the catalog.
//!
//! Every server runs as its own process: two `freerouter-simulator`s (0 ms and the upstream
//! latency), the gateway twice (its providers with limits far above what the run spends, so every
//! request reserves and settles quota, and without limits), and the peer. The load generator runs in
//! this process, so the CPU each server spends is read from `/proc` apart from the load's. All are
//! started first and measured in turns, figure by figure, so a change in the machine's load
//! spreads over all of them rather than one.

mod report;
mod subjects;

pub use report::{Figures, Measured, OverheadReport};

use super::load::{self, LoadResult, Target};
use super::peer::{self, PeerKind};
use super::procfs::{self, CpuSample, GroupCpu};
use super::steady;
use super::upstream::SimulatorProcess;
use std::path::PathBuf;
use std::time::Duration;
use subjects::{ANSWER, Subject};

#[derive(Clone, Debug)]
pub struct OverheadConfig {
    /// The gateway binary to start (`freerouter-gateway`).
    pub gateway_binary: PathBuf,
    /// The simulator binary to start (`freerouter-simulator`).
    pub simulator_binary: PathBuf,
    /// Closed-loop clients of the CPU, throughput and latency measurements.
    pub clients: usize,
    /// How long each closed-loop measurement runs, per server.
    pub measure_for: Duration,
    /// Upstream latency of the latency measurement.
    pub upstream_latency_ms: u64,
    /// Requests a second of the open-loop measurement (0 ms upstream).
    pub steady_rate: f64,
    pub steady_for: Duration,
    /// Each measurement is taken in this many turns per server, the servers taking turns in a
    /// rotating order, so a burst of other work on the machine falls on all of them alike.
    pub rounds: usize,
    /// A gateway to compare with, when installed.
    pub peer: Option<PeerKind>,
    /// The peer's command, else found on `PATH`.
    pub peer_binary: Option<PathBuf>,
    /// A PostgreSQL server's admin URL: a gateway with the ledger on a fresh database of it is
    /// measured too, beside the one on SQLite.
    pub postgres: Option<String>,
}

/// One closed-loop run against `subject`'s `target`, with the CPU spent meanwhile by the subject
/// and by the 0 ms simulator.
async fn measure(
    http: &reqwest::Client,
    subject: &Subject,
    target: &Target,
    clients: usize,
    duration: Duration,
    upstream_pid: u32,
) -> Measured {
    let pids = subject.processes.now();
    let (cpu, upstream) = (GroupCpu::read(&pids), CpuSample::read(upstream_pid));
    let load = load::run(http, target, clients, duration).await;
    let pids = subject.processes.now();
    Measured {
        cpu_ns: cpu.spent_until(&GroupCpu::read(&pids)),
        upstream_cpu_ns: upstream.spent_until(&CpuSample::read(upstream_pid)),
        load,
    }
}

/// Resident memory of a subject's processes now, and their peaks so far, in KiB.
fn memory_kib(subject: &Subject) -> (u64, u64) {
    let pids = subject.processes.now();
    (
        pids.iter().map(|&p| procfs::rss_kib(p)).sum(),
        pids.iter().map(|&p| procfs::peak_rss_kib(p)).sum(),
    )
}

/// Runs every measurement; prints progress to stderr as it goes.
pub async fn run(config: OverheadConfig) -> OverheadReport {
    crate::harness::init_tls();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .expect("a client");
    let simulator =
        |latency_ms| SimulatorProcess::start(&config.simulator_binary, "chat", ANSWER, latency_ms);
    let fast = simulator(0).await.expect("the 0 ms simulator starts");
    let slow = simulator(config.upstream_latency_ms)
        .await
        .expect("the slow simulator starts");

    let (on_dir, off_dir) = (temp_dir(), temp_dir());
    let gateway = |ledger, dir| {
        subjects::start_gateway(&config.gateway_binary, &fast, &slow, 10, ledger, dir, None)
    };
    let ledger_on = gateway(true, on_dir.path()).await;
    let ledger_off = gateway(false, off_dir.path()).await;
    let big_dir = temp_dir();
    let big = subjects::start_gateway(
        &config.gateway_binary,
        &fast,
        &slow,
        1_000,
        true,
        big_dir.path(),
        None,
    )
    .await;
    let mut subjects = vec![
        subjects::direct(&fast, &slow),
        subjects::gateway("FreeRouter, ledger on", &ledger_on),
        subjects::gateway("FreeRouter, ledger off", &ledger_off),
    ];
    let pg_dir = temp_dir();
    let mut on_postgres = None;
    if let Some(admin) = &config.postgres {
        match freerouter::store::testing::create_database(admin, "bench").await {
            Ok(url) => {
                let started = subjects::start_gateway(
                    &config.gateway_binary,
                    &fast,
                    &slow,
                    10,
                    true,
                    pg_dir.path(),
                    Some(&url),
                )
                .await;
                on_postgres = Some(started);
            }
            Err(error) => eprintln!("the PostgreSQL gateway is skipped: {error}"),
        }
    }
    if let Some(started) = &on_postgres {
        subjects.push(subjects::gateway(
            "FreeRouter, ledger on, PostgreSQL",
            started,
        ));
    }
    let mut peer_skipped = None;
    let mut running_peer = None;
    if let Some(kind) = &config.peer {
        eprintln!("starting {}", kind.title());
        match peer::start(
            kind,
            config.peer_binary.as_deref(),
            &fast.base_url(),
            &slow.base_url(),
            &http,
            ANSWER,
        )
        .await
        {
            Ok(started) => {
                subjects.push(subjects::peer(&started));
                running_peer = Some(started);
            }
            Err(why) => {
                eprintln!("{} skipped: {why}", kind.title());
                peer_skipped = Some(format!("{} skipped: {why}", kind.title()));
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut figures: Vec<Figures> = subjects
        .iter()
        .map(|s| Figures {
            name: s.name.clone(),
            memory: s.has_memory.then(|| (memory_kib(s).0, 0)),
            ..Figures::default()
        })
        .collect();

    eprintln!("warming up");
    let warm = Duration::from_millis(700);
    let big_subject = subjects::gateway("1,000 routes", &big);
    for subject in subjects.iter().chain([&big_subject]) {
        for target in [&subject.plain, &subject.stream, &subject.slow] {
            load::run(&http, target, config.clients, warm).await;
        }
    }

    let (clients, upstream_pid) = (config.clients, fast.pid());
    let rounds = config.rounds.max(1);
    let slice = config.measure_for / rounds as u32;
    let n = subjects.len();
    eprintln!("CPU and throughput, non-stream, 0 ms upstream, {clients} clients");
    for round in 0..rounds {
        for i in turns(round, n) {
            let (s, f) = (&subjects[i], &mut figures[i]);
            f.plain
                .merge(measure(&http, s, &s.plain, clients, slice, upstream_pid).await);
        }
    }
    eprintln!("CPU and throughput, stream, 0 ms upstream, {clients} clients");
    for round in 0..rounds {
        for i in turns(round, n) {
            let (s, f) = (&subjects[i], &mut figures[i]);
            f.stream
                .merge(measure(&http, s, &s.stream, clients, slice, upstream_pid).await);
        }
    }
    let latency_ms = config.upstream_latency_ms;
    eprintln!("latency, {latency_ms} ms upstream, {clients} clients");
    for round in 0..rounds {
        for i in turns(round, n) {
            let (s, f) = (&subjects[i], &mut figures[i]);
            f.latency
                .merge(load::run(&http, &s.slow, clients, slice).await);
        }
    }
    let rate = config.steady_rate;
    eprintln!("steady {rate} req/s, 0 ms upstream (open loop)");
    let steady_slice = config.steady_for / rounds as u32;
    for round in 0..rounds {
        for i in turns(round, n) {
            let (s, f) = (&subjects[i], &mut figures[i]);
            f.steady
                .merge(steady::run(&http, &s.plain, rate, steady_slice).await);
        }
    }
    for (s, f) in subjects.iter().zip(&mut figures) {
        if let Some((_, peak)) = &mut f.memory {
            *peak = memory_kib(s).1;
        }
    }
    drop(running_peer);
    let _ = ledger_off.terminate().await;

    eprintln!("10 and 1,000 routes, ledger on");
    let catalog = [&subjects[1], &big_subject];
    let mut by_size = [LoadResult::default(), LoadResult::default()];
    for round in 0..rounds {
        for i in turns(round, 2) {
            by_size[i].merge(load::run(&http, &catalog[i].plain, clients, slice).await);
        }
    }
    let [routes_10, routes_1000] = by_size;
    let _ = ledger_on.terminate().await;
    let _ = big.terminate().await;

    let mut figures = figures.into_iter();
    OverheadReport {
        clients,
        upstream_latency_ms: config.upstream_latency_ms,
        steady_rate: config.steady_rate,
        direct: figures.next().unwrap_or_default(),
        ledger_on: figures.next().unwrap_or_default(),
        ledger_off: figures.next().unwrap_or_default(),
        peer: figures.next(),
        peer_skipped,
        routes_10,
        routes_1000,
    }
}

/// The order the `n` servers take their turns in round `round`: each round starts one later.
fn turns(round: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (round + i) % n)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

#[cfg(test)]
mod tests {
    use super::turns;

    #[test]
    fn every_round_serves_everyone_once_and_starts_one_later() {
        let rounds: Vec<Vec<usize>> = (0..4).map(|r| turns(r, 3).collect()).collect();
        assert_eq!(
            rounds,
            vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
        );
    }
}
