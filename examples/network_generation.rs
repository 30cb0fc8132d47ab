//! Times the social-network generators and the summary at a given size, and
//! measures generation's peak memory beyond the graph:
//! `cargo run --release --example network_generation -- [USERS [MEAN_DEGREE [THREADS [MODEL [REWIRING]]]]]`
//! (the summary's triangle count runs on THREADS, default 1; generation is
//! sequential; MODEL one of erdos-renyi, watts-strogatz, barabasi-albert, default
//! all three; REWIRING Watts–Strogatz's, default 0.1). Prints wall time and process CPU time: on a shared machine the
//! CPU time is the steadier figure. The peak is the process's resident high-water
//! mark during generation (reset before each model through `/proc/self/clear_refs`)
//! less the resident set before it and the graph's own bytes, per user.

use std::time::Instant;

use brandsim::network;
use brandsim::rng::ReplicationKey;

/// CPU seconds (user + system) of the whole process so far, from
/// `/proc/self/stat` (in clock ticks, 100 per second on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name in parentheses; utime and stime are
    // the 14th and 15th of the line, the 12th and 13th after ") ".
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split(' ')
        .map(|field| field.parse().unwrap_or(0.0))
        .collect();
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`), or 0 if unreadable.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// Resets the resident high-water mark (`VmHWM`) to the current resident set
/// (Linux 4.0+); false if the kernel refuses.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `f`, returning its result, wall and CPU milliseconds.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let value = f();
    (
        value,
        wall.elapsed().as_secs_f64() * 1e3,
        (cpu_seconds() - cpu) * 1e3,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users: u32 = args.get(1).map_or(1_000_000, |a| a.parse().expect("USERS"));
    let degree: u32 = args.get(2).map_or(10, |a| a.parse().expect("MEAN_DEGREE"));
    let threads: usize = args.get(3).map_or(1, |a| a.parse().expect("THREADS"));
    let only = args.get(4).map(String::as_str);
    let rewiring: f64 = args.get(5).map_or(0.1, |a| a.parse().expect("REWIRING"));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("the first pool");
    let key = ReplicationKey::new(1, 0);
    let models: [(&str, &dyn Fn() -> network::Graph); 3] = [
        ("erdos-renyi", &|| {
            network::erdos_renyi(users, f64::from(degree), key)
        }),
        ("watts-strogatz", &|| {
            network::watts_strogatz(users, degree, rewiring, key)
        }),
        ("barabasi-albert", &|| {
            network::barabasi_albert(users, degree / 2, key)
        }),
    ];
    for (name, build) in models {
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let measured = reset_peak();
        let before_kb = status_kb("VmRSS");
        let (graph, wall, cpu) = timed(build);
        let peak_kb = status_kb("VmHWM");
        let beyond = (peak_kb.saturating_sub(before_kb) * 1024) as f64 - graph.heap_bytes() as f64;
        let peak = if measured {
            format!("{:.1} B/user", beyond / f64::from(users.max(1)))
        } else {
            "unmeasured".to_string()
        };
        let (summary, summary_wall, summary_cpu) = timed(|| network::summary(&graph));
        println!(
            "{name:16} N = {users}, E = {:>10}: generated in {wall:>6.0} ms ({cpu:>6.0} ms CPU), \
             summarised in {summary_wall:>6.0} ms ({summary_cpu:>6.0} ms CPU); max degree {}, \
             transitivity {:.4}; graph {:.1} MB, generation's peak beyond it {peak}",
            graph.edges(),
            summary.max_degree,
            summary.transitivity,
            graph.heap_bytes() as f64 / 1e6
        );
    }
}
