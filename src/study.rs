//! A Monte Carlo study: many replications of one scenario, in parallel, and
//! their summary. `run`, sweeps, comparisons and the optimiser all go through
//! [`run_replications`].
//!
//! Parallel scheme: one rayon pool of `threads` threads. Replications are spread
//! over it, and inside each replication the scans over users split into chunks on
//! the same pool, so every core is busy whether a study has 1 replication or 1000
//! (rayon's work stealing balances the two levels). Results never depend on it.

pub mod output_dir;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::simulate;
use crate::metrics::{METRIC_NAMES, SERIES_NAMES};
use crate::outcome::Outcome;
use crate::scenario::Scenario;
use crate::stats::{Summary, quantile, summarize};

/// Replications of a study with their wall time.
pub struct StudyRun {
    pub outcomes: Vec<Outcome>,
    pub seconds: f64,
}

/// A rayon pool of `threads` threads (0 = one per core).
pub fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("brandsim-{i}"))
        .build()
        .expect("a thread pool can be built")
}

/// Runs the given replications of `scenario` on `pool`, calling `on_done` as each
/// one finishes (from any thread). Outcomes come back in the order asked.
pub fn run_replications(
    scenario: &Arc<Scenario>,
    replications: &[u32],
    pool: &rayon::ThreadPool,
    on_done: &(dyn Fn(&Outcome) + Sync),
) -> StudyRun {
    run_replications_until(
        scenario,
        replications,
        pool,
        &AtomicBool::new(false),
        on_done,
    )
}

/// [`run_replications`] that starts no replication once `stop` is set (replications
/// already running finish). Outcomes come back in the order asked, without the
/// skipped ones.
pub fn run_replications_until(
    scenario: &Arc<Scenario>,
    replications: &[u32],
    pool: &rayon::ThreadPool,
    stop: &AtomicBool,
    on_done: &(dyn Fn(&Outcome) + Sync),
) -> StudyRun {
    crate::memory::mark_start();
    let start = Instant::now();
    // Waves of one replication per thread: a thread that waits inside a
    // replication's parallel scan may steal work, and without waves it could
    // start yet another replication, holding one more World in memory.
    let wave = pool.current_num_threads().max(1);
    let mut outcomes = Vec::with_capacity(replications.len());
    for replications in replications.chunks(wave) {
        outcomes.extend(pool.install(|| {
            replications
                .par_iter()
                .with_max_len(1)
                .filter_map(|&j| {
                    if stop.load(Ordering::SeqCst) {
                        return None;
                    }
                    let outcome = simulate(scenario, j);
                    on_done(&outcome);
                    Some(outcome)
                })
                .collect::<Vec<_>>()
        }));
    }
    StudyRun {
        outcomes,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Quantiles of one daily series on one day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub mean: f64,
    pub p05: f64,
    pub p50: f64,
    pub p95: f64,
}

/// The summary of a study: each metric over replications, and each daily series
/// day by day.
#[derive(Debug, Clone, PartialEq)]
pub struct StudySummary {
    /// `(metric name, summary)` in `METRIC_NAMES` order.
    pub metrics: Vec<(&'static str, Summary)>,
    /// `daily[series][day]`, series in `SERIES_NAMES` order.
    pub daily: Vec<Vec<Band>>,
}

impl StudySummary {
    pub fn metric(&self, name: &str) -> Option<&Summary> {
        by_name(&self.metrics, name)
    }
}

/// The entry named `name` of a list in `METRIC_NAMES` order.
pub fn by_name<'a, T>(named: &'a [(&'static str, T)], name: &str) -> Option<&'a T> {
    named
        .iter()
        .find(|(m, _)| *m == name)
        .map(|(_, value)| value)
}

/// Each metric over the outcomes: `columns[m][k]` is metric `m` (in
/// `METRIC_NAMES` order) of outcome `k`.
pub fn metric_columns(outcomes: &[Outcome]) -> Vec<Vec<f64>> {
    let per_replication: Vec<Vec<f64>> = outcomes.iter().map(|o| o.metrics().0).collect();
    (0..METRIC_NAMES.len())
        .map(|m| per_replication.iter().map(|row| row[m]).collect())
        .collect()
}

/// The summary of each metric from its [`metric_columns`], in `METRIC_NAMES` order.
pub fn summarize_metrics(columns: &[Vec<f64>]) -> Vec<(&'static str, Summary)> {
    METRIC_NAMES
        .iter()
        .zip(columns)
        .map(|(&name, values)| (name, summarize(values)))
        .collect()
}

/// Summarises non-empty outcomes of one scenario.
pub fn summarize_study(outcomes: &[Outcome]) -> StudySummary {
    let metrics = summarize_metrics(&metric_columns(outcomes));
    let days = outcomes[0].daily.days();
    let daily = SERIES_NAMES
        .iter()
        .map(|&series| {
            (0..days)
                .map(|day| {
                    let mut values: Vec<f64> = outcomes
                        .iter()
                        .map(|o| o.daily.value(series, day))
                        .collect();
                    values.sort_by(f64::total_cmp);
                    Band {
                        mean: values.iter().sum::<f64>() / values.len() as f64,
                        p05: quantile(&values, 0.05),
                        p50: quantile(&values, 0.50),
                        p95: quantile(&values, 0.95),
                    }
                })
                .collect()
        })
        .collect();
    StudySummary { metrics, daily }
}
