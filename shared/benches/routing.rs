//! What planning one request costs as the catalog grows: 10, 100 and 1,000 routes.
//!
//! `cargo bench -p freerouter --bench routing`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use freerouter::catalog::{CatalogSnapshot, Origin, Provider, RouteSeed};
use freerouter::health::{HealthBoard, RouteFailure};
use freerouter::routing::modes::{self, Mode};
use freerouter::routing::plan::{PlanInput, plan};
use freerouter::routing::stats::RouteStats;
use std::collections::BTreeMap;
use std::hint::black_box;

fn provider(name: &str) -> Provider {
    Provider::keyless(name, "http://127.0.0.1:9/v1")
}

/// `n` routes over 10 providers; every fifth one disabled or lacking tools, a few cooling.
fn catalog(n: usize) -> (CatalogSnapshot, HealthBoard) {
    let mut providers = BTreeMap::new();
    for p in 0..10 {
        providers.insert(format!("p{p}"), provider(&format!("p{p}")));
    }
    let routes = (0..n)
        .map(|i| {
            let tags = if i % 5 == 4 {
                vec![]
            } else {
                vec!["tools".to_string(), "json".to_string()]
            };
            RouteSeed {
                provider: format!("p{}", i % 10),
                model: format!("model-{i}"),
                display_name: Some(format!("Model {i}")),
                rank: Some(i as i64 + 1),
                aliases: vec![format!("family-{}", i % 7)],
                context_window: Some(if i % 3 == 0 { 8_192 } else { 131_072 }),
                max_output: Some(4_096),
                tags,
                ..RouteSeed::default()
            }
            .into_route(Origin::Default, i % 5 != 3, 0)
        })
        .collect();
    let snapshot = CatalogSnapshot::new(1, routes, providers);
    let health = HealthBoard::default();
    let settings = freerouter::config::Settings::load(&Default::default())
        .unwrap()
        .routing;
    for i in (0..n).step_by(11) {
        for _ in 0..settings.outage_after_failures {
            health.record_failure(
                &format!("p{}/model-{i}", i % 10),
                RouteFailure::Error,
                "503",
                0,
                &settings,
            );
        }
    }
    (snapshot, health)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    let tools = ["tools"];
    for n in [10usize, 100, 1_000] {
        let (snapshot, health) = catalog(n);
        let stats = RouteStats::default();
        group.bench_with_input(BenchmarkId::new("auto", n), &n, |b, _| {
            b.iter(|| {
                let input = PlanInput {
                    model: "auto",
                    strict: false,
                    prompt_tokens: 12_000,
                    max_tokens: Some(512),
                    required_tags: &tools,
                    excluded: &[],
                };
                black_box(plan(&snapshot, &health, &input, 1).unwrap())
            })
        });
        group.bench_with_input(BenchmarkId::new("alias", n), &n, |b, _| {
            b.iter(|| {
                let input = PlanInput {
                    model: "family-3",
                    strict: false,
                    prompt_tokens: 100,
                    max_tokens: None,
                    required_tags: &[],
                    excluded: &[],
                };
                black_box(plan(&snapshot, &health, &input, 1).unwrap())
            })
        });
        group.bench_with_input(BenchmarkId::new("auto-balanced", n), &n, |b, _| {
            b.iter(|| {
                let input = PlanInput {
                    model: "auto-balanced",
                    strict: false,
                    prompt_tokens: 100,
                    max_tokens: None,
                    required_tags: &[],
                    excluded: &[],
                };
                let mut candidates = plan(&snapshot, &health, &input, 1).unwrap().candidates;
                modes::order(&mut candidates, Mode::Balanced, &stats, || 0.5);
                black_box(candidates)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
