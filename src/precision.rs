//! Adaptive precision: replications in batches until every watched metric's 95%
//! CI half-width is below `relative × |mean|`, or a cap. Replication indices go
//! on 0, 1, 2, ..., so the result equals a plain study of that many replications.

use std::sync::Arc;

use serde::Serialize;

use crate::outcome::Outcome;
use crate::scenario::Scenario;
use crate::stats::summarize;
use crate::study::run_replications;

/// What `--precision` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionTarget {
    /// REL > 0: the CI half-width must be below `relative × |mean|`.
    pub relative: f64,
    /// Metric names (checked by the caller).
    pub metrics: Vec<String>,
    /// Never more replications than this.
    pub max_replications: u32,
}

/// How precise one metric is: its CI half-width relative to `|mean|`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPrecision {
    pub metric: String,
    pub mean: f64,
    pub half_width: f64,
    /// `half_width / |mean|` (infinite for a zero mean with any spread).
    pub relative_half_width: f64,
    pub reached: bool,
}

/// The precision of `metrics` over `outcomes` against `relative`.
pub fn precision_of(
    outcomes: &[Outcome],
    metrics: &[String],
    relative: f64,
) -> Vec<MetricPrecision> {
    let rows: Vec<_> = outcomes.iter().map(Outcome::metrics).collect();
    metrics
        .iter()
        .map(|metric| {
            let values: Vec<f64> = rows
                .iter()
                .map(|row| row.get(metric).unwrap_or(f64::NAN))
                .collect();
            let s = summarize(&values);
            let half_width = (s.ci95[1] - s.ci95[0]) / 2.0;
            // A metric with no spread at all is known exactly, even at mean 0.
            let exact = s.sd == 0.0;
            MetricPrecision {
                metric: metric.clone(),
                mean: s.mean,
                half_width: if exact { 0.0 } else { half_width },
                relative_half_width: if exact {
                    0.0
                } else {
                    half_width / s.mean.abs()
                },
                reached: exact || half_width < relative * s.mean.abs(),
            }
        })
        .collect()
}

/// A study run to a precision target.
pub struct PreciseRun {
    pub outcomes: Vec<Outcome>,
    pub seconds: f64,
    pub batches: u32,
    /// Per watched metric, at the end.
    pub precision: Vec<MetricPrecision>,
    /// Whether every watched metric reached the target (else the cap stopped it).
    pub reached: bool,
}

/// Runs `first_batch` replications (at least 2), then more in batches until the
/// target is met or `max_replications` are done. Each next batch is the number
/// the current spread says is still missing (CI width shrinks as 1/√n), at most
/// doubling the study.
pub fn run_until_precise(
    scenario: &Arc<Scenario>,
    first_batch: u32,
    target: &PrecisionTarget,
    pool: &rayon::ThreadPool,
    on_done: &(dyn Fn(&Outcome) + Sync),
) -> PreciseRun {
    let cap = target.max_replications.max(2);
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut seconds = 0.0;
    let mut batches = 0;
    let mut batch = first_batch.clamp(2, cap);
    loop {
        let done = outcomes.len() as u32;
        let replications: Vec<u32> = (done..done + batch).collect();
        let run = run_replications(scenario, &replications, pool, on_done);
        outcomes.extend(run.outcomes);
        seconds += run.seconds;
        batches += 1;
        let precision = precision_of(&outcomes, &target.metrics, target.relative);
        let reached = precision.iter().all(|p| p.reached);
        let n = outcomes.len() as u32;
        if reached || n >= cap {
            return PreciseRun {
                outcomes,
                seconds,
                batches,
                precision,
                reached,
            };
        }
        let worst = precision
            .iter()
            .map(|p| p.relative_half_width / target.relative)
            .fold(1.0, f64::max);
        let needed = (f64::from(n) * worst * worst * 1.1).ceil();
        let more = if needed.is_finite() {
            (needed - f64::from(n)).clamp(1.0, f64::from(n)) as u32
        } else {
            n
        };
        batch = more.min(cap - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::thread_pool;

    fn small() -> Arc<Scenario> {
        let text = include_str!("../scenarios/bass.toml");
        let mut scenario = crate::scenario::parse_str(text, "bass.toml").unwrap();
        scenario.market.population = 500;
        scenario.simulation.days = 20;
        // p = 1000 * 0.05 / 10 / 500 = 0.01 impressions per user per day, as in
        // the full-size file, so adoption stays partial and random.
        scenario.channels[0].daily_budget = 0.05;
        Arc::new(scenario)
    }

    #[test]
    fn precise_run_equals_a_plain_run_of_the_same_length() {
        let scenario = small();
        let pool = thread_pool(2);
        // Out of reach: the batches go on to the cap.
        let target = PrecisionTarget {
            relative: 1e-6,
            metrics: vec!["active_payers".into()],
            max_replications: 40,
        };
        let precise = run_until_precise(&scenario, 4, &target, &pool, &|_| {});
        assert_eq!(precise.outcomes.len(), 40);
        assert!(precise.batches > 1 && !precise.reached);
        let plain: Vec<u32> = (0..40).collect();
        let plain = run_replications(&scenario, &plain, &pool, &|_| {});
        assert_eq!(precise.outcomes, plain.outcomes);
        let last = &precise.precision[0];
        assert!(last.half_width > 0.0 && !last.reached);
    }

    #[test]
    fn a_loose_target_stops_after_the_first_batch() {
        let target = PrecisionTarget {
            relative: 10.0,
            metrics: vec!["aware".into(), "churned".into()],
            max_replications: 100,
        };
        let precise = run_until_precise(&small(), 3, &target, &thread_pool(1), &|_| {});
        assert_eq!((precise.batches, precise.outcomes.len()), (1, 3));
        assert!(precise.reached);
    }
}
