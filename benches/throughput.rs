//! Throughput of the engine in user-days per second on the bundled
//! knowledge-platform scenario (180 days): one replication on one thread, one
//! replication on all threads, and a study of several replications.
//! 10^7 users only with `BRANDSIM_BENCH_HUGE=1` (about a minute more).

use std::sync::Arc;

use brandsim::engine::simulate;
use brandsim::scenario::{Scenario, parse_str};
use brandsim::study::{run_replications, thread_pool};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn scenario(population: u32) -> Arc<Scenario> {
    let mut scenario = parse_str(
        include_str!("../scenarios/knowledge_platform.toml"),
        "knowledge_platform.toml",
    )
    .expect("bundled scenario is valid");
    scenario.market.population = population;
    Arc::new(scenario)
}

fn populations() -> Vec<u32> {
    let mut sizes = vec![100_000, 1_000_000];
    if std::env::var_os("BRANDSIM_BENCH_HUGE").is_some() {
        sizes.push(10_000_000);
    }
    sizes
}

fn user_days(scenario: &Scenario, replications: u32) -> u64 {
    u64::from(scenario.market.population)
        * u64::from(scenario.simulation.days)
        * u64::from(replications)
}

fn one_replication(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("one_replication");
    group.sample_size(10);
    for population in populations() {
        let scenario = scenario(population);
        group.throughput(Throughput::Elements(user_days(&scenario, 1)));
        for (label, threads) in [("1_thread", 1), ("all_threads", cores)] {
            let pool = thread_pool(threads);
            group.bench_with_input(BenchmarkId::new(label, population), &scenario, |b, s| {
                b.iter(|| pool.install(|| simulate(s, 0)))
            });
        }
    }
    group.finish();
}

fn study(c: &mut Criterion) {
    const REPLICATIONS: u32 = 8;
    let mut group = c.benchmark_group("study_8_replications");
    group.sample_size(10);
    let pool = thread_pool(0);
    let scenario = scenario(100_000);
    let replications: Vec<u32> = (0..REPLICATIONS).collect();
    group.throughput(Throughput::Elements(user_days(&scenario, REPLICATIONS)));
    group.bench_function(BenchmarkId::new("all_threads", 100_000), |b| {
        b.iter(|| run_replications(&scenario, &replications, &pool, &|_| {}))
    });
    group.finish();
}

criterion_group!(benches, one_replication, study);
criterion_main!(benches);
