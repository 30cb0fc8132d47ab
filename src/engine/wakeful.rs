//! Keeping the pool's other threads awake between a day's parallel scans.
//!
//! A day is one parallel scan (steps 1–5) and then a few sequential steps on
//! the replication's thread (10–20 µs at 10^6 users; more on a day with many
//! new subscribers or renewals). Left alone, an idle rayon worker falls
//! asleep within about 30 µs, and waking it for the next scan costs about
//! 60 µs on a virtual machine, so the other threads would often join a scan
//! late. Instead, after each scan, jobs keep them polling for work until the
//! next scan starts (see BENCHMARKS.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;

/// Counts the day's parallel scans, so that a [`Wakefulness::keep_awake`] job
/// knows when the next one has started.
#[derive(Resource, Debug)]
pub struct Wakefulness {
    scans: Arc<AtomicU32>,
    /// The CPUs this process may run on: polling threads beyond them would
    /// only take CPU time from the thread doing the day's work.
    cpus: usize,
}

impl Default for Wakefulness {
    fn default() -> Self {
        Wakefulness {
            scans: Arc::default(),
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The longest a keep-awake job polls. It normally stops much sooner, when the
/// next scan starts; the bound caps what it can cost where there is no next
/// scan soon (the last day) or where it ran nested in other work.
const LONGEST_WAKE: Duration = Duration::from_millis(1);

impl Wakefulness {
    /// Marks the start of a parallel scan: keep-awake jobs return.
    pub fn scan_starts(&self) {
        self.scans.fetch_add(1, Ordering::Relaxed);
    }

    /// After a parallel scan, while this thread runs the day's sequential
    /// steps, keeps the pool's other threads (as many as there are other CPUs)
    /// polling for work, and running whatever appears, until the next scan
    /// starts, instead of letting them fall asleep. Does nothing outside a
    /// pool of two threads or more.
    pub fn keep_awake(&self) {
        let Some(spawner) = rayon::current_thread_index() else {
            return;
        };
        let others = rayon::current_num_threads().min(self.cpus) - 1;
        let seen = self.scans.load(Ordering::Relaxed);
        for _ in 0..others {
            let scans = Arc::clone(&self.scans);
            rayon::spawn(move || {
                // The replication's own thread picks the job up only while it
                // waits for other work; it must not poll for its own next scan.
                if rayon::current_thread_index() != Some(spawner) {
                    poll_for_work(|| scans.load(Ordering::Relaxed) != seen, LONGEST_WAKE);
                }
            });
        }
    }
}

/// Runs the pool's pending jobs, or spins, until `done()` or for at most
/// `longest`.
fn poll_for_work(done: impl Fn() -> bool, longest: Duration) {
    let start = Instant::now();
    while !done() && start.elapsed() < longest {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
    }

    #[test]
    fn polling_runs_the_jobs_that_appear_meanwhile() {
        // One thread: the spawned job can only run inside the polling loop.
        let ran = Arc::new(AtomicBool::new(false));
        let finished = pool(1).install(|| {
            let flag = Arc::clone(&ran);
            rayon::spawn(move || flag.store(true, Ordering::Relaxed));
            poll_for_work(|| ran.load(Ordering::Relaxed), Duration::from_secs(60));
            ran.load(Ordering::Relaxed)
        });
        assert!(finished);
    }

    #[test]
    fn polling_stops_at_its_bound_when_nothing_happens() {
        let start = Instant::now();
        pool(1).install(|| poll_for_work(|| false, Duration::from_millis(2)));
        assert!(start.elapsed() >= Duration::from_millis(2));
    }
}
