use bevy_ecs::prelude::*;
use bevy_ecs::schedule::SingleThreadedExecutor;
use brandsim::engine::systems as s;
use std::sync::Arc;
fn main() {
    let threads: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let mut sc = brandsim::scenario::parse_str(
        &std::fs::read_to_string("scenarios/knowledge_platform.toml").unwrap(),
        "kp.toml",
    )
    .unwrap();
    sc.market.population = 1_000_000;
    let sc = Arc::new(sc);
    let pool = brandsim::study::thread_pool(threads);
    pool.install(|| {
        let t = std::time::Instant::now();
        let mut world = brandsim::engine::build_world(&sc, 0);
        println!("build {:?}", t.elapsed());
        let mut scheds: Vec<(&str, Schedule)> = Vec::new();
        macro_rules! add {
            ($name:expr, $sys:expr) => {{
                let mut sch = Schedule::default();
                sch.set_executor(SingleThreadedExecutor::new());
                sch.add_systems($sys);
                scheds.push(($name, sch));
            }};
        }
        add!("start_day", s::start_day);
        add!("expose", s::expose);
        add!("choose_items", s::choose_items);
        add!("click", s::click);
        add!("convert", s::convert);
        add!("go_dormant", s::go_dormant);
        add!("renew_or_churn", s::renew_or_churn);
        add!("record_day", s::record_day);
        let mut times = vec![0f64; scheds.len()];
        for _ in 0..180 {
            for (i, (_, sch)) in scheds.iter_mut().enumerate() {
                let t = std::time::Instant::now();
                sch.run(&mut world);
                times[i] += t.elapsed().as_secs_f64();
            }
        }
        for (i, (n, _)) in scheds.iter().enumerate() {
            println!("{n:15} {:.1} ms", times[i] * 1000.0);
        }
        println!("total {:.1} ms", times.iter().sum::<f64>() * 1000.0);
    });
}
