//! The overhead benchmark's figures, its tables (one per kind of figure) and issue 16's targets,
//! each met or missed.

use crate::bench::load::LoadResult;
use crate::bench::steady::SteadyResult;

/// A closed-loop run and the CPU spent meanwhile.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub load: LoadResult,
    /// Spent by the server under load (for direct: the simulator).
    pub cpu_ns: u64,
    /// Spent by the 0 ms simulator in the same run.
    pub upstream_cpu_ns: u64,
}

impl Measured {
    /// Pools another run of the same load into this one.
    pub fn merge(&mut self, other: Measured) {
        self.load.merge(other.load);
        self.cpu_ns += other.cpu_ns;
        self.upstream_cpu_ns += other.upstream_cpu_ns;
    }

    /// The server's CPU per request served, in µs.
    pub fn cpu_us(&self) -> f64 {
        per_request_us(self.cpu_ns, self.load.served())
    }

    /// The simulator's CPU per request served in the same run, in µs.
    pub fn upstream_cpu_us(&self) -> f64 {
        per_request_us(self.upstream_cpu_ns, self.load.served())
    }
}

fn per_request_us(ns: u64, requests: usize) -> f64 {
    ns as f64 / 1_000.0 / requests.max(1) as f64
}

/// Everything measured of one server.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub name: String,
    /// Non-streamed, 0 ms upstream.
    pub plain: Measured,
    /// Streamed, 0 ms upstream.
    pub stream: Measured,
    /// Non-streamed, upstream with latency.
    pub latency: LoadResult,
    /// Open loop at a steady rate, 0 ms upstream.
    pub steady: SteadyResult,
    /// Resident memory idle after start and at its peak over the run, in KiB (none for direct).
    pub memory: Option<(u64, u64)>,
}

impl Figures {
    /// Failed or incomplete answers over the whole run, and what went wrong with the first.
    fn errors(&self) -> (usize, Option<&str>) {
        let runs = [
            &self.plain.load,
            &self.stream.load,
            &self.latency,
            &self.steady.load,
        ];
        (
            runs.iter().map(|r| r.errors).sum(),
            runs.iter().find_map(|r| r.first_error.as_deref()),
        )
    }
}

#[derive(Clone, Debug, Default)]
pub struct OverheadReport {
    pub clients: usize,
    pub upstream_latency_ms: u64,
    pub steady_rate: f64,
    pub direct: Figures,
    pub ledger_on: Figures,
    pub ledger_off: Figures,
    pub peer: Option<Figures>,
    /// Why the peer asked for did not run.
    pub peer_skipped: Option<String>,
    /// Ledger on, 0 ms upstream, with 10 and with 1,000 routes in the catalog.
    pub routes_10: LoadResult,
    pub routes_1000: LoadResult,
}

/// How much worse `on` is than `off`, in % of `off` (`higher_is_worse` says which way is worse);
/// `None` when `off` is not above zero.
pub fn cost_percent(on: f64, off: f64, higher_is_worse: bool) -> Option<f64> {
    if off <= 0.0 {
        return None;
    }
    let worse = if higher_is_worse { on - off } else { off - on };
    Some(worse / off * 100.0)
}

/// One figure of the ledger on against off.
struct LedgerFigure {
    name: &'static str,
    unit: &'static str,
    on: f64,
    off: f64,
    higher_is_worse: bool,
}

impl LedgerFigure {
    fn cost_percent(&self) -> Option<f64> {
        cost_percent(self.on, self.off, self.higher_is_worse)
    }

    /// Within 10 %; without a base to take a percentage of, only when on is no worse than off.
    fn met(&self) -> bool {
        match self.cost_percent() {
            Some(cost) => cost <= 10.0,
            None if self.higher_is_worse => self.on <= self.off,
            None => self.on >= self.off,
        }
    }
}

impl OverheadReport {
    /// The gateways measured: FreeRouter with and without the ledger, and the peer.
    fn gateways(&self) -> Vec<&Figures> {
        let mut all = vec![&self.ledger_on, &self.ledger_off];
        all.extend(&self.peer);
        all
    }

    fn everyone(&self) -> Vec<&Figures> {
        let mut all = vec![&self.direct];
        all.extend(self.gateways());
        all
    }

    /// CPU per request in units of the simulator's own in the direct run.
    pub fn cpu_ratio(&self, f: &Figures, stream: bool) -> f64 {
        let (mine, base) = if stream {
            (&f.stream, &self.direct.stream)
        } else {
            (&f.plain, &self.direct.plain)
        };
        mine.cpu_us() / base.cpu_us().max(1e-9)
    }

    /// Latency added to direct's at the `percentile`, with the upstream latency, in ms.
    pub fn added_ms(&self, f: &Figures, percentile: f64) -> f64 {
        f.latency.p(percentile) - self.direct.latency.p(percentile)
    }

    /// The p99 at the steady rate over direct's, in ms.
    pub fn steady_p99_over_direct_ms(&self, f: &Figures) -> f64 {
        f.steady.load.p(99.0) - self.direct.steady.load.p(99.0)
    }

    /// Non-stream throughput at 0 ms upstream in % of direct's.
    pub fn throughput_percent(&self, f: &Figures, stream: bool) -> f64 {
        let (mine, base) = if stream {
            (&f.stream, &self.direct.stream)
        } else {
            (&f.plain, &self.direct.plain)
        };
        mine.load.throughput() / base.load.throughput().max(1e-9) * 100.0
    }

    /// How much slower 1,000 routes are than 10, in % of throughput.
    pub fn catalog_slowdown_percent(&self) -> f64 {
        (1.0 - self.routes_1000.throughput() / self.routes_10.throughput().max(1e-9)) * 100.0
    }

    fn ledger_figures(&self) -> Vec<LedgerFigure> {
        let (on, off) = (&self.ledger_on, &self.ledger_off);
        let figure = |name, unit, on, off, higher_is_worse| LedgerFigure {
            name,
            unit,
            on,
            off,
            higher_is_worse,
        };
        vec![
            figure(
                "CPU per request, non-stream",
                "µs",
                on.plain.cpu_us(),
                off.plain.cpu_us(),
                true,
            ),
            figure(
                "CPU per request, stream",
                "µs",
                on.stream.cpu_us(),
                off.stream.cpu_us(),
                true,
            ),
            figure(
                "added p50",
                "ms",
                self.added_ms(on, 50.0),
                self.added_ms(off, 50.0),
                true,
            ),
            figure(
                "added p99",
                "ms",
                self.added_ms(on, 99.0),
                self.added_ms(off, 99.0),
                true,
            ),
            figure(
                "p99 at the steady rate",
                "ms",
                on.steady.load.p(99.0),
                off.steady.load.p(99.0),
                true,
            ),
            figure(
                "throughput, non-stream",
                "req/s",
                on.plain.load.throughput(),
                off.plain.load.throughput(),
                false,
            ),
        ]
    }

    /// Issue 16's targets for FreeRouter with the ledger on, each with whether this run met it.
    pub fn targets(&self) -> Vec<(String, bool)> {
        let on = &self.ledger_on;
        let mut targets = Vec::new();
        for (kind, stream) in [("non-stream", false), ("stream", true)] {
            let measured = if stream { &on.stream } else { &on.plain };
            let ratio = self.cpu_ratio(on, stream);
            targets.push((
                format!(
                    "CPU per request, {kind}: {:.0} µs = {ratio:.1}× the simulator's ≤ 3×",
                    measured.cpu_us()
                ),
                ratio <= 3.0,
            ));
        }
        let (p50, p99) = (self.added_ms(on, 50.0), self.added_ms(on, 99.0));
        let at = format!(
            "{} ms upstream, {} clients",
            self.upstream_latency_ms, self.clients
        );
        targets.push((
            format!("added p50 ({at}): {p50:.3} ms ≤ 0.3 ms"),
            p50 <= 0.3,
        ));
        targets.push((format!("added p99 ({at}): {p99:.3} ms ≤ 2 ms"), p99 <= 2.0));
        let over = self.steady_p99_over_direct_ms(on);
        targets.push((
            format!(
                "p99 at a steady {} req/s: {:.2} ms against direct's {:.2} ms, {over:+.2} ms ≤ 2 ms",
                self.steady_rate,
                on.steady.load.p(99.0),
                self.direct.steady.load.p(99.0)
            ),
            over <= 2.0,
        ));
        let share = self.throughput_percent(on, false);
        targets.push((
            format!("throughput, 0 ms upstream: {share:.1} % of direct ≥ 40 %"),
            share >= 40.0,
        ));
        for figure in self.ledger_figures() {
            let cost = figure
                .cost_percent()
                .map_or("—".to_string(), |c| format!("{c:+.1} %"));
            targets.push((
                format!(
                    "ledger on vs off, {}: {} against {} {}, costs {cost} ≤ 10 %",
                    figure.name,
                    number(figure.on),
                    number(figure.off),
                    figure.unit
                ),
                figure.met(),
            ));
        }
        let idle_mb = on.memory.map_or(0.0, |(idle, _)| mb(idle));
        targets.push((format!("idle RSS {idle_mb:.1} MB ≤ 15 MB"), idle_mb <= 15.0));
        let slowdown = self.catalog_slowdown_percent();
        targets.push((
            format!("1,000 routes {slowdown:.1} % slower than 10 ≤ 10 %"),
            slowdown <= 10.0,
        ));
        targets
    }

    /// The figures as markdown tables, one per kind.
    pub fn tables(&self) -> String {
        let mut out = String::new();
        let clients = self.clients;
        out.push_str(&format!(
            "| CPU per request, 0 ms upstream, {clients} clients | non-stream µs | × simulator | stream µs | × simulator | the simulator's own µs in the same run (non-stream / stream) |\n\
             |---|---|---|---|---|---|\n"
        ));
        for f in self.everyone() {
            out.push_str(&format!(
                "| {} | {:.0} | {:.1}× | {:.0} | {:.1}× | {:.0} / {:.0} |\n",
                f.name,
                f.plain.cpu_us(),
                self.cpu_ratio(f, false),
                f.stream.cpu_us(),
                self.cpu_ratio(f, true),
                f.plain.upstream_cpu_us(),
                f.stream.upstream_cpu_us(),
            ));
        }

        out.push_str(&format!(
            "\n| throughput, 0 ms upstream, {clients} clients | non-stream req/s | % of direct | stream req/s | % of direct |\n\
             |---|---|---|---|---|\n"
        ));
        for f in self.everyone() {
            out.push_str(&format!(
                "| {} | {:.0} | {:.1} % | {:.0} | {:.1} % |\n",
                f.name,
                f.plain.load.throughput(),
                self.throughput_percent(f, false),
                f.stream.load.throughput(),
                self.throughput_percent(f, true),
            ));
        }

        out.push_str(&format!(
            "\n| latency, {} ms upstream, {clients} clients | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s |\n\
             |---|---|---|---|---|---|\n",
            self.upstream_latency_ms
        ));
        for f in self.everyone() {
            out.push_str(&format!(
                "| {} | {:.2} | {:.2} | {:.3} | {:.3} | {:.0} |\n",
                f.name,
                f.latency.p(50.0),
                f.latency.p(99.0),
                self.added_ms(f, 50.0),
                self.added_ms(f, 99.0),
                f.latency.throughput(),
            ));
        }

        out.push_str(&format!(
            "\n| steady {} req/s (open loop), 0 ms upstream | p50 ms | p99 ms | p99 over direct's ms | requests | sent late, p99 ms |\n\
             |---|---|---|---|---|---|\n",
            self.steady_rate
        ));
        for f in self.everyone() {
            out.push_str(&format!(
                "| {} | {:.2} | {:.2} | {:+.2} | {} | {:.2} |\n",
                f.name,
                f.steady.load.p(50.0),
                f.steady.load.p(99.0),
                self.steady_p99_over_direct_ms(f),
                f.steady.scheduled,
                f.steady.lag_p99_ms(),
            ));
        }

        out.push_str("\n| memory | idle RSS MB | peak RSS MB over the run |\n|---|---|---|\n");
        for f in self.gateways() {
            if let Some((idle, peak)) = f.memory {
                out.push_str(&format!(
                    "| {} | {:.1} | {:.1} |\n",
                    f.name,
                    mb(idle),
                    mb(peak)
                ));
            }
        }

        out.push_str(
            "\n| FreeRouter, ledger on vs off | ledger on | ledger off | on costs |\n|---|---|---|---|\n",
        );
        for figure in self.ledger_figures() {
            out.push_str(&format!(
                "| {} | {} {unit} | {} {unit} | {} |\n",
                figure.name,
                number(figure.on),
                number(figure.off),
                figure
                    .cost_percent()
                    .map_or("—".to_string(), |c| format!("{c:+.1} %")),
                unit = figure.unit,
            ));
        }

        out.push_str(&format!(
            "\n| catalog, ledger on, 0 ms upstream, {clients} clients | req/s | p50 ms | p99 ms |\n|---|---|---|---|\n"
        ));
        for (name, run) in [
            ("10 routes", &self.routes_10),
            ("1,000 routes", &self.routes_1000),
        ] {
            out.push_str(&format!(
                "| {name} | {:.0} | {:.2} | {:.2} |\n",
                run.throughput(),
                run.p(50.0),
                run.p(99.0)
            ));
        }

        let errors: Vec<String> = self
            .everyone()
            .iter()
            .map(|f| format!("{}: {}", f.name, f.errors().0))
            .collect();
        out.push_str(&format!(
            "\nfailed or incomplete answers: {}; catalog runs: {} / {}\n",
            errors.join(", "),
            self.routes_10.errors,
            self.routes_1000.errors
        ));
        for f in self.everyone() {
            if let (_, Some(first)) = f.errors() {
                out.push_str(&format!("first failure, {}: {first}\n", f.name));
            }
        }
        if let Some(why) = &self.peer_skipped {
            out.push_str(&format!("{why}\n"));
        }
        out
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A figure with as many decimals as its size needs.
fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A run of `served` requests that each took `ms`, over one second.
    fn load(served: usize, ms: f64) -> LoadResult {
        LoadResult {
            latencies: vec![Duration::from_secs_f64(ms / 1000.0); served],
            elapsed: Duration::from_secs(1),
            ..LoadResult::default()
        }
    }

    fn figures(name: &str, served: usize, cpu_us: u64, latency_ms: f64, steady_ms: f64) -> Figures {
        let measured = Measured {
            load: load(served, 0.5),
            cpu_ns: cpu_us * 1_000 * served as u64,
            upstream_cpu_ns: 20_000 * served as u64,
        };
        Figures {
            name: name.to_string(),
            plain: measured.clone(),
            stream: measured,
            latency: load(100, latency_ms),
            steady: SteadyResult {
                load: load(100, steady_ms),
                scheduled: 100,
                lags: Vec::new(),
            },
            memory: Some((12 * 1024, 30 * 1024)),
        }
    }

    fn report(on: Figures, off: Figures) -> OverheadReport {
        OverheadReport {
            clients: 16,
            upstream_latency_ms: 50,
            steady_rate: 100.0,
            direct: figures("direct", 10_000, 20, 50.0, 0.4),
            ledger_on: on,
            ledger_off: off,
            peer: None,
            peer_skipped: Some("LiteLLM skipped: not installed".into()),
            routes_10: load(5_000, 1.0),
            routes_1000: load(4_800, 1.0),
        }
    }

    fn missed(report: &OverheadReport) -> Vec<String> {
        report
            .targets()
            .into_iter()
            .filter(|(_, met)| !met)
            .map(|(target, _)| target)
            .collect()
    }

    #[test]
    fn a_gateway_within_every_target_meets_them_all() {
        let report = report(
            figures("on", 5_000, 55, 50.2, 1.5),
            figures("off", 5_000, 52, 50.2, 1.4),
        );
        assert_eq!(missed(&report), Vec::<String>::new());
        assert!((report.cpu_ratio(&report.ledger_on, false) - 2.75).abs() < 1e-9);
        assert!((report.throughput_percent(&report.ledger_on, false) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn each_target_misses_on_its_own_figure() {
        let costly = report(
            figures("on", 3_000, 400, 51.0, 9.0),
            figures("off", 5_000, 180, 50.5, 2.0),
        );
        let missed = missed(&costly);
        for needle in [
            "CPU per request, non-stream: 400 µs = 20.0×",
            "CPU per request, stream",
            "added p50",
            "throughput, 0 ms upstream: 30.0 %",
            "ledger on vs off, CPU per request, non-stream: 400 against 180 µs, costs +122.2 %",
            "ledger on vs off, throughput, non-stream",
            "p99 at a steady 100 req/s",
        ] {
            assert!(
                missed.iter().any(|m| m.contains(needle)),
                "{needle} not in {missed:#?}"
            );
        }
        assert!(!missed.iter().any(|m| m.contains("idle RSS")));
    }

    #[test]
    fn the_ledger_costs_are_taken_in_the_direction_that_is_worse() {
        assert_eq!(cost_percent(110.0, 100.0, true), Some(10.0));
        assert_eq!(cost_percent(90.0, 100.0, false), Some(10.0));
        assert_eq!(cost_percent(120.0, 100.0, false), Some(-20.0));
        assert_eq!(cost_percent(0.2, 0.0, true), None);
        let no_base = LedgerFigure {
            name: "added p50",
            unit: "ms",
            on: 0.1,
            off: -0.05,
            higher_is_worse: true,
        };
        assert!(!no_base.met());
    }

    #[test]
    fn the_tables_hold_every_server_and_say_why_a_peer_is_missing() {
        let mut report = report(
            figures("FreeRouter, ledger on", 5_000, 55, 50.2, 1.5),
            figures("FreeRouter, ledger off", 5_000, 52, 50.2, 1.4),
        );
        report.peer = Some(figures("LiteLLM", 500, 2_000, 53.0, 6.0));
        let tables = report.tables();
        assert!(tables.contains("| LiteLLM | 2000 | 100.0× | 2000 | 100.0× | 20 / 20 |"));
        assert!(tables.contains("| LiteLLM | 500 | 5.0 % | 500 | 5.0 % |"));
        assert!(tables.contains("| LiteLLM | 12.0 | 30.0 |"));
        assert!(tables.contains("LiteLLM skipped: not installed"));
        let tables_count = tables.lines().filter(|l| l.starts_with("|---")).count();
        assert_eq!(tables_count, 7);
    }
}
