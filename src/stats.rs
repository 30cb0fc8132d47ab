//! Summary statistics of Monte Carlo replications: mean, sd, standard error,
//! Student-t 95% confidence interval and quantiles.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The summary of one metric over replications. With a single replication the
/// spread (`sd`, `se`, `ci95`) is undefined: NaN, written as `null` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mean: f64,
    pub sd: f64,
    pub se: f64,
    pub ci95: [f64; 2],
    pub p05: f64,
    pub p50: f64,
    pub p95: f64,
}

/// The 97.5% quantile of Student's t with `n - 1` degrees of freedom (NaN for n < 2).
pub fn t_critical_95(n: usize) -> f64 {
    if n < 2 {
        return f64::NAN;
    }
    StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(f64::NAN)
}

/// Mean and sample standard deviation (NaN sd for fewer than two values).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The `q` quantile of sorted values, linearly interpolated (Hyndman–Fan type 7).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let weight = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * weight
}

/// Summarises a non-empty set of values.
pub fn summarize(values: &[f64]) -> Summary {
    assert!(!values.is_empty(), "a summary needs at least one value");
    let (mean, sd) = mean_sd(values);
    let se = sd / (values.len() as f64).sqrt();
    let half_width = t_critical_95(values.len()) * se;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Summary {
        mean,
        sd,
        se,
        ci95: [mean - half_width, mean + half_width],
        p05: quantile(&sorted, 0.05),
        p50: quantile(&sorted, 0.50),
        p95: quantile(&sorted, 0.95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_hand_computed_values() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(s.mean, 3.0);
        assert!((s.sd - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((s.se - (2.5f64 / 5.0).sqrt()).abs() < 1e-12);
        // t(0.975, 4) = 2.776445
        assert!((s.ci95[1] - (3.0 + 2.776445 * s.se)).abs() < 1e-5);
        assert!((s.p05 - 1.2).abs() < 1e-12);
        assert_eq!(s.p50, 3.0);
        assert!((s.p95 - 4.8).abs() < 1e-12);
    }

    #[test]
    fn one_value_has_no_spread() {
        let s = summarize(&[7.0]);
        assert_eq!((s.mean, s.p05, s.p95), (7.0, 7.0, 7.0));
        assert!(s.sd.is_nan() && s.ci95[0].is_nan());
    }
}
