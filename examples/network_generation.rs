//! Times the social-network generators (and the summary) at a given size:
//! `cargo run --release --example network_generation -- [USERS [MEAN_DEGREE]]`.

use std::time::Instant;

use brandsim::network;
use brandsim::rng::ReplicationKey;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users: u32 = args.get(1).map_or(1_000_000, |a| a.parse().expect("USERS"));
    let degree: u32 = args.get(2).map_or(10, |a| a.parse().expect("MEAN_DEGREE"));
    let key = ReplicationKey::new(1, 0);
    let timed = |name: &str, build: &dyn Fn() -> network::Graph| {
        let start = Instant::now();
        let graph = build();
        let generated = start.elapsed();
        println!(
            "{name:16} N = {users}, E = {:>10}, {:>8.1} ms, {:.1} MB",
            graph.edges(),
            generated.as_secs_f64() * 1e3,
            graph.heap_bytes() as f64 / 1e6
        );
    };
    timed("erdos-renyi", &|| {
        network::erdos_renyi(users, f64::from(degree), key)
    });
    timed("watts-strogatz", &|| {
        network::watts_strogatz(users, degree, 0.1, key)
    });
    timed("barabasi-albert", &|| {
        network::barabasi_albert(users, degree / 2, key)
    });
}
