//! Strategy comparison: arms (a base scenario and its variants, or several files)
//! run on the same replications, and each arm's paired difference from the base,
//! with the unpaired standard error beside it to show what the pairing bought.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::metrics::METRIC_NAMES;
use crate::outcome::Outcome;
use crate::report::{csv_number, csv_text};
use crate::scenario::Scenario;
use crate::stats::{Summary, mean_sd, t_critical_95};
use crate::study::{by_name, metric_columns, summarize_metrics};

/// One strategy of a comparison.
pub struct Arm {
    pub name: String,
    pub scenario: Arc<Scenario>,
}

/// An arm minus the base in one metric, replication by replication.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedDifference {
    /// Mean of `arm_j - base_j`.
    pub mean: f64,
    /// Student-t 95% CI of the mean paired difference.
    pub ci95: [f64; 2],
    /// Standard error of the mean paired difference: `sd(arm_j - base_j) / √R`.
    pub se_paired: f64,
    /// What the standard error would be from independent runs:
    /// `√(sd(arm)²/R + sd(base)²/R)`.
    pub se_unpaired: f64,
    /// The probability that the arm beats the base: the share of paired
    /// replications with `arm_j − base_j > 0` (issue 16: with uncertain
    /// parameters, how often the decision holds).
    pub p_beats_base: f64,
    /// Wilson's 95% score interval of `p_beats_base`.
    pub p_beats_base_ci95: [f64; 2],
}

/// Wilson's 95% score interval for a proportion of `successes` in `n` trials
/// (Wilson 1927): `(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`,
/// `z = Φ⁻¹(0.975)`. Inside [0, 1] even at 0 or `n` successes; `[0, 1]` for
/// `n = 0`.
pub fn wilson_interval(successes: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = Z * Z;
    let centre = p + z2 / (2.0 * n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let scale = 1.0 + z2 / n;
    [
        ((centre - half) / scale).max(0.0),
        ((centre + half) / scale).min(1.0),
    ]
}

/// Paired difference of `arm` and `base`, values of the same replications in order.
pub fn paired_difference(arm: &[f64], base: &[f64]) -> PairedDifference {
    assert_eq!(arm.len(), base.len(), "paired values come in pairs");
    let n = arm.len() as f64;
    let differences: Vec<f64> = arm.iter().zip(base).map(|(a, b)| a - b).collect();
    let (mean, sd) = mean_sd(&differences);
    let se_paired = sd / n.sqrt();
    let half_width = t_critical_95(arm.len()) * se_paired;
    let (_, sd_arm) = mean_sd(arm);
    let (_, sd_base) = mean_sd(base);
    let wins = differences.iter().filter(|&&d| d > 0.0).count();
    PairedDifference {
        p_beats_base: wins as f64 / n,
        p_beats_base_ci95: wilson_interval(wins, differences.len()),
        mean,
        ci95: [mean - half_width, mean + half_width],
        se_paired,
        se_unpaired: ((sd_arm * sd_arm + sd_base * sd_base) / n).sqrt(),
    }
}

/// One arm's results: every metric, and its paired difference from the base.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmResult {
    pub name: String,
    /// In `METRIC_NAMES` order.
    pub metrics: Vec<(&'static str, Summary)>,
    /// In `METRIC_NAMES` order; all zero for the base itself.
    pub differences: Vec<(&'static str, PairedDifference)>,
}

impl ArmResult {
    pub fn metric(&self, name: &str) -> Option<&Summary> {
        by_name(&self.metrics, name)
    }
    pub fn difference(&self, name: &str) -> Option<&PairedDifference> {
        by_name(&self.differences, name)
    }
}

/// The results of a comparison: arms in the order given, the first is the base.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub arms: Vec<ArmResult>,
    pub replications: usize,
}

impl Comparison {
    /// Arm indices from best to worst by the mean of `metric` (higher is better;
    /// ties keep the given order).
    pub fn ranking(&self, metric: &str) -> Vec<usize> {
        let mean = |i: usize| self.arms[i].metric(metric).map_or(f64::NAN, |s| s.mean);
        let mut order: Vec<usize> = (0..self.arms.len()).collect();
        order.sort_by(|&a, &b| mean(b).total_cmp(&mean(a)));
        order
    }
}

/// Compares arms from their outcomes (`outcomes[arm][k]` is replication k of
/// that arm; every arm ran the same replications). The first arm is the base.
pub fn compare(names: &[String], outcomes: &[Vec<Outcome>]) -> Comparison {
    let per_arm: Vec<Vec<Vec<f64>>> = outcomes.iter().map(|arm| metric_columns(arm)).collect();
    let base = &per_arm[0];
    let arms = names
        .iter()
        .zip(&per_arm)
        .map(|(name, columns)| ArmResult {
            name: name.clone(),
            metrics: summarize_metrics(columns),
            differences: METRIC_NAMES
                .iter()
                .zip(columns.iter().zip(base))
                .map(|(&m, (values, base))| (m, paired_difference(values, base)))
                .collect(),
        })
        .collect();
    Comparison {
        arms,
        replications: outcomes[0].len(),
    }
}

/// `compare.csv`: one row per arm and metric.
pub fn compare_csv(comparison: &Comparison) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "arm",
            "metric",
            "mean",
            "ci_low",
            "ci_high",
            "difference",
            "difference_ci_low",
            "difference_ci_high",
            "se_paired",
            "se_unpaired",
            "p_beats_base",
            "p_beats_base_ci_low",
            "p_beats_base_ci_high",
        ])
        .expect("write to memory");
    for arm in &comparison.arms {
        for ((metric, s), (_, d)) in arm.metrics.iter().zip(&arm.differences) {
            let mut row = vec![csv_text(&arm.name), metric.to_string()];
            row.extend(
                [
                    s.mean,
                    s.ci95[0],
                    s.ci95[1],
                    d.mean,
                    d.ci95[0],
                    d.ci95[1],
                    d.se_paired,
                    d.se_unpaired,
                    d.p_beats_base,
                    d.p_beats_base_ci95[0],
                    d.p_beats_base_ci95[1],
                ]
                .iter()
                .map(|&v| csv_number(v)),
            );
            writer.write_record(&row).expect("write to memory");
        }
    }
    writer.into_inner().expect("write to memory")
}

/// `compare.json`: the ranking by `metric` and, per arm, every metric and its
/// paired difference from the base.
pub fn compare_json(comparison: &Comparison, seed: u64, metric: &str) -> Value {
    let arms: Vec<Value> = comparison
        .arms
        .iter()
        .map(|arm| {
            let metrics: serde_json::Map<String, Value> = arm
                .metrics
                .iter()
                .zip(&arm.differences)
                .map(|((name, s), (_, d))| {
                    (
                        name.to_string(),
                        json!({ "summary": s, "paired_difference": d }),
                    )
                })
                .collect();
            json!({ "name": arm.name, "metrics": metrics })
        })
        .collect();
    let ranking: Vec<&str> = comparison
        .ranking(metric)
        .into_iter()
        .map(|i| comparison.arms[i].name.as_str())
        .collect();
    json!({
        "base": comparison.arms[0].name,
        "seed": seed,
        "replications": comparison.replications,
        "common_random_numbers": "every arm runs replications 0..R-1 of the same seed",
        "ranking_metric": metric,
        "ranking": ranking,
        "arms": arms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_published_values() {
        // Newcombe (1998), Table I: 81/263 -> [0.2553, 0.3662]; 15/148 ->
        // [0.0624, 0.1605]; 0/20 -> [0, 0.1611].
        for (k, n, low, high) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
        ] {
            let [l, h] = wilson_interval(k, n);
            assert!(
                (l - low).abs() < 5e-5 && (h - high).abs() < 5e-5,
                "{k}/{n}: [{l}, {h}]"
            );
        }
        assert_eq!(wilson_interval(0, 0), [0.0, 1.0]);
        let [l, h] = wilson_interval(20, 20);
        assert!(h == 1.0 && (l - 0.8389).abs() < 5e-5);
    }

    #[test]
    fn p_beats_base_is_the_share_of_positive_paired_differences() {
        let base = [1.0, 2.0, 3.0, 4.0, 5.0];
        let arm = [1.5, 1.0, 3.0, 4.5, 6.0];
        let d = paired_difference(&arm, &base);
        // 1.5 > 1, 4.5 > 4, 6 > 5; a tie (3 = 3) does not beat.
        assert_eq!(d.p_beats_base, 0.6);
        assert_eq!(d.p_beats_base_ci95, wilson_interval(3, 5));
    }

    #[test]
    fn identical_arms_have_a_zero_width_paired_ci() {
        let base = [3.0, 5.5, 4.25, 9.0];
        let d = paired_difference(&base, &base);
        assert_eq!((d.mean, d.ci95, d.se_paired), (0.0, [0.0, 0.0], 0.0));
        assert!(d.se_unpaired > 0.0);
    }

    #[test]
    fn a_constant_shift_is_known_exactly_when_paired() {
        let base = [3.0, 5.0, 4.0, 9.0];
        let arm: Vec<f64> = base.iter().map(|b| b + 2.0).collect();
        let d = paired_difference(&arm, &base);
        assert_eq!((d.mean, d.se_paired), (2.0, 0.0));
        // Unpaired: both variances are var(base) = 20.75 / 3, so se = √(2·var/4).
        assert!((d.se_unpaired - (2.0 * 20.75 / 3.0 / 4.0f64).sqrt()).abs() < 1e-12);
    }
}
