//! Wall time of each system of the day over one replication of a scenario (the
//! bundled knowledge platform unless a file is given) at 10^6 users unless a
//! population is given: where a replication spends its time.
//!
//!     cargo run --release --example system_times -- THREADS [POPULATION [SCENARIO]]
//!
//! Each system runs as its own schedule, so its commands are applied (and timed)
//! with it.

use std::sync::Arc;
use std::time::Instant;

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{ScheduleConfigs, SingleThreadedExecutor};
use bevy_ecs::system::ScheduleSystem;
use brandsim::engine::{build_world, systems};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let population: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut scenario = match args.next() {
        Some(path) => {
            let text = std::fs::read_to_string(&path).expect("a readable scenario file");
            brandsim::scenario::parse_str(&text, &path).unwrap_or_else(|error| panic!("{error}"))
        }
        None => brandsim::scenario::parse_str(
            include_str!("../scenarios/knowledge_platform.toml"),
            "knowledge_platform.toml",
        )
        .expect("the bundled scenario is valid"),
    };
    scenario.market.population = population;
    let scenario = Arc::new(scenario);

    brandsim::study::thread_pool(threads).install(|| {
        let start = Instant::now();
        let mut world = build_world(&scenario, 0);
        println!("{:<16} {:8.1} ms", "build_world", ms(start));
        let mut steps: Vec<(&str, Schedule, f64)> = Vec::new();
        let mut step = |name, system: ScheduleConfigs<ScheduleSystem>| {
            let mut schedule = Schedule::default();
            schedule.set_executor(SingleThreadedExecutor::new());
            schedule.add_systems(system);
            steps.push((name, schedule, 0.0));
        };
        step("start_day", systems::start_day.into_configs());
        step("run_funnel", systems::run_funnel.into_configs());
        step("add_subscribers", systems::add_subscribers.into_configs());
        step("renew_or_churn", systems::renew_or_churn.into_configs());
        step("record_day", systems::record_day.into_configs());
        for _ in 0..scenario.simulation.days {
            for (_, schedule, seconds) in &mut steps {
                let start = Instant::now();
                schedule.run(&mut world);
                *seconds += start.elapsed().as_secs_f64();
            }
        }
        let mut total = 0.0;
        for (name, _, seconds) in &steps {
            println!("{name:<16} {:8.1} ms", seconds * 1000.0);
            total += seconds;
        }
        println!("{:<16} {:8.1} ms", "all days", total * 1000.0);
    });
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
