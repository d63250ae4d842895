//! The routing modes: `auto` keeps rank order; `auto-fast` orders by measured speed; `auto-balanced`
//! spreads load with a bandit over measured success and speed, rank as the prior.

use super::plan::Candidate;
use super::stats::{RouteStat, RouteStats};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Fast,
    Balanced,
}

impl Mode {
    pub fn from_model(model: &str) -> Mode {
        match model {
            "auto-fast" => Mode::Fast,
            "auto-balanced" => Mode::Balanced,
            _ => Mode::Auto,
        }
    }
}

/// Both modes are optimistic about an unmeasured route's speed, so it gets tried and measured.
const PRIOR_TTFT_MS: f64 = 0.0;

/// Reorders candidates (already in rank order) for `mode`. `noise` yields uniform values in [0, 1).
pub fn order(
    candidates: &mut [Candidate],
    mode: Mode,
    stats: &RouteStats,
    mut noise: impl FnMut() -> f64,
) {
    let n = candidates.len().max(1) as f64;
    match mode {
        Mode::Auto => {}
        Mode::Fast => {
            let speed = |c: &Candidate| {
                stats
                    .get(&c.route.route_id)
                    .filter(|s| s.samples > 0)
                    .map_or(PRIOR_TTFT_MS, |s| s.ttft_ms)
            };
            // A stable sort keeps rank order among equals.
            candidates.sort_by(|a, b| speed(a).total_cmp(&speed(b)));
        }
        Mode::Balanced => {
            let mut scored: Vec<(f64, Candidate)> = candidates
                .iter()
                .enumerate()
                .map(|(position, c)| {
                    let stat = stats.get(&c.route.route_id).unwrap_or_default();
                    (sample_score(&stat, position as f64 / n, noise()), c.clone())
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (slot, (_, candidate)) in candidates.iter_mut().zip(scored) {
                *slot = candidate;
            }
        }
    }
}

/// A Thompson-style draw: the success estimate (rank gives the prior: stronger routes start
/// more trusted) plus noise that shrinks with evidence, times a speed factor.
fn sample_score(stat: &RouteStat, rank_fraction: f64, uniform: f64) -> f64 {
    let prior_successes = 1.0 + 2.0 * (1.0 - rank_fraction);
    let prior_failures = 1.0 + 2.0 * rank_fraction;
    let a = stat.successes as f64 + prior_successes;
    let b = stat.failures as f64 + prior_failures;
    let mean = a / (a + b);
    let spread = (mean * (1.0 - mean) / (a + b + 1.0)).sqrt() * 2.0;
    let success = (mean + (uniform * 2.0 - 1.0) * spread).clamp(0.0, 1.0);
    let ttft = if stat.samples > 0 {
        stat.ttft_ms
    } else {
        PRIOR_TTFT_MS
    };
    success / (1.0 + ttft / 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Origin, Provider, RouteSeed};
    use std::sync::Arc;
    use std::time::Duration;

    fn candidates(n: usize) -> Vec<Candidate> {
        let provider = Arc::new(Provider::keyless("p", ""));
        (0..n)
            .map(|i| Candidate {
                route: Arc::new(
                    RouteSeed {
                        provider: "p".into(),
                        model: format!("m{i}"),
                        rank: Some(i as i64 + 1),
                        ..RouteSeed::default()
                    }
                    .into_route(Origin::Manual, true, 0),
                ),
                provider: provider.clone(),
                window_tokens: 8192,
            })
            .collect()
    }

    fn ids(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.route.route_id.as_str()).collect()
    }

    #[test]
    fn auto_fast_puts_the_fastest_measured_route_first() {
        let stats = RouteStats::default();
        stats.success("p/m0", Duration::from_millis(900));
        stats.success("p/m1", Duration::from_millis(2_000));
        stats.success("p/m2", Duration::from_millis(100));
        let mut c = candidates(4);
        order(&mut c, Mode::Fast, &stats, || 0.5);
        assert_eq!(
            ids(&c),
            vec!["p/m3", "p/m2", "p/m0", "p/m1"],
            "an unmeasured route is explored first"
        );
    }

    #[test]
    fn auto_balanced_spreads_load_but_favours_reliable_fast_routes() {
        let stats = RouteStats::default();
        for _ in 0..50 {
            stats.success("p/m1", Duration::from_millis(200));
            stats.failure("p/m0");
        }
        let mut firsts = std::collections::HashMap::new();
        let mut seed = 1u64;
        for _ in 0..400 {
            let mut c = candidates(3);
            order(&mut c, Mode::Balanced, &stats, || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 11) as f64 / (1u64 << 53) as f64
            });
            *firsts.entry(c[0].route.route_id.clone()).or_insert(0) += 1;
        }
        assert!(firsts["p/m1"] > 300, "{firsts:?}");
        assert!(
            !firsts.contains_key("p/m0"),
            "a failing route is not preferred: {firsts:?}"
        );
    }

    #[test]
    fn auto_keeps_rank_order() {
        let mut c = candidates(3);
        order(&mut c, Mode::Auto, &RouteStats::default(), || 0.9);
        assert_eq!(ids(&c), vec!["p/m0", "p/m1", "p/m2"]);
    }
}
