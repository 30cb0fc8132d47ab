//! Whether a search has converged, and how much to trust its answer: the standard
//! error of the averaged iterates (AR(1)-corrected), their drift, the gradient of
//! `J` against its interval, a verdict with advice, and the norm test that sizes
//! an adaptive search's steps (Byrd, Chin, Nocedal & Wu 2012).

use serde::Serialize;

/// Fewest averaged iterates from which the search is judged at all.
pub const MIN_WINDOW: usize = 10;

/// z of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Drift (difference of the means of the window's two halves) that counts as
/// settled, in standard errors of that difference: loose enough that a settled
/// search is rarely called unsettled (0.3%), tight enough that iterates still
/// walking towards the optimum are caught.
pub const DRIFT_Z: f64 = 3.0;

/// The drift, in standard errors, below which an adaptive search may stop early:
/// stricter than [`DRIFT_Z`], as stopping too soon cannot be undone.
pub const STOP_DRIFT_Z: f64 = 1.5;

/// The norm test's ratio: a step's gradient standard error must stay below this
/// share of the norm of the gradient of `J` (Byrd et al. 2012, θ = 0.5).
pub const NORM_TEST: f64 = 0.5;

/// Most replications per step an adaptive search grows to.
pub const MAX_ADAPTIVE_REPLICATIONS: u32 = 4096;

/// The mean of `values` and its standard error for an autocorrelated series:
/// `sd/√n · √((1+ρ)/(1−ρ))` with `ρ` the lag-1 autocorrelation (clamped to
/// [−0.9, 0.98]): the variance of the mean of an AR(1) process, which is what
/// the iterates of a gradient search near its optimum are (`ρ ≈ 1 − a·|J''|`).
/// NaN standard error for fewer than 4 values.
pub fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 4 {
        return (mean, f64::NAN);
    }
    let deviations: Vec<f64> = values.iter().map(|v| v - mean).collect();
    let variance = deviations.iter().map(|d| d * d).sum::<f64>() / n as f64;
    if variance == 0.0 {
        return (mean, 0.0);
    }
    let lagged = deviations.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / n as f64;
    let rho = (lagged / variance).clamp(-0.9, 0.98);
    let sd = (variance * n as f64 / (n - 1) as f64).sqrt();
    (
        mean,
        sd / (n as f64).sqrt() * ((1.0 + rho) / (1.0 - rho)).sqrt(),
    )
}

/// How one tuned value settled over the averaged iterates.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Settling {
    /// Standard error of the answer (the mean of the window).
    pub answer_se: f64,
    /// The drift over the window: the least-squares slope of the iterates times
    /// half the window's length (what a linear trend moves the mean of the
    /// second half from that of the first).
    pub drift: f64,
    /// The standard error of `drift`, from the residuals about the trend with
    /// their lag-1 autocorrelation (so a trend does not pass for noise).
    pub drift_se: f64,
}

impl Settling {
    /// Of one tuned value's averaged iterates.
    pub fn of(window: &[f64]) -> Settling {
        let (_, answer_se) = mean_and_se(window);
        let n = window.len();
        if n < 4 {
            return Settling {
                answer_se,
                drift: f64::NAN,
                drift_se: f64::NAN,
            };
        }
        let nf = n as f64;
        let t_mean = (nf - 1.0) / 2.0;
        let mean = window.iter().sum::<f64>() / nf;
        let sxx: f64 = (0..n).map(|t| (t as f64 - t_mean).powi(2)).sum();
        let sxy: f64 = window
            .iter()
            .enumerate()
            .map(|(t, x)| (t as f64 - t_mean) * (x - mean))
            .sum();
        let slope = sxy / sxx;
        let residuals: Vec<f64> = window
            .iter()
            .enumerate()
            .map(|(t, x)| x - mean - slope * (t as f64 - t_mean))
            .collect();
        let variance = residuals.iter().map(|r| r * r).sum::<f64>() / (nf - 2.0);
        let lagged = residuals.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (nf - 2.0);
        let rho = if variance > 0.0 {
            (lagged / variance).clamp(-0.9, 0.98)
        } else {
            0.0
        };
        let slope_se = (variance / sxx).sqrt() * ((1.0 + rho) / (1.0 - rho)).sqrt();
        Settling {
            answer_se,
            drift: slope * nf / 2.0,
            drift_se: slope_se * nf / 2.0,
        }
    }

    /// The drift is within its noise (false if the noise is unknown).
    pub fn settled(&self) -> bool {
        self.drift.abs() <= DRIFT_Z * self.drift_se
    }
}

/// The gradient of `J` along one tuned value at the answer, from a fresh estimate:
/// `∂E[M]/∂θ_i − λ·θ_i`, with its standard error. For a value of a `--budget`
/// group, `stationarity` is its derivative minus the group's mean (over values
/// not at a bound), which is zero at an optimum inside the bounds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GradientAtAnswer {
    /// `∂E[M]/∂θ_i`: the marginal return of the value.
    pub marginal_return: f64,
    pub marginal_return_se: f64,
    /// The component of `∇J` whose zero the search seeks (projected for a group).
    pub stationarity: f64,
    pub stationarity_se: f64,
    /// Where the value lies: "inside", "lower bound" or "upper bound".
    pub position: &'static str,
}

impl GradientAtAnswer {
    /// Zero within its 95% interval, or pointing out of the bound the value
    /// rests on (the optimum may lie on a bound).
    pub fn is_stationary(&self) -> bool {
        let half = Z95 * self.stationarity_se;
        match self.position {
            "lower bound" => self.stationarity <= half,
            "upper bound" => self.stationarity >= -half,
            _ => self.stationarity.abs() <= half,
        }
    }
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// It ran every iteration.
    Iterations,
    /// Adaptive effort: it had converged.
    Converged,
    /// It spent `--budget-user-days`.
    Budget,
}

/// The verdict on a search: converged, or not and what to change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub converged: bool,
    /// Empty when converged: each reason with what to change.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// `converged`, or `not converged: ...` with every reason.
    pub fn text(&self) -> String {
        if self.converged {
            "converged".to_string()
        } else {
            format!("not converged: {}", self.reasons.join("; "))
        }
    }
}

/// Judges a search from its averaged iterates' settling per value, the gradient
/// at the answer per value (or none yet), the answer, and the tolerance on its
/// standard error; `keys` names the values.
pub fn judge(
    keys: &[String],
    window: usize,
    settling: &[Settling],
    gradient: Option<&[GradientAtAnswer]>,
    answer: &[f64],
    tolerance: f64,
    replications_per_step: u32,
) -> Verdict {
    let mut reasons = Vec::new();
    if window < MIN_WINDOW {
        reasons.push(format!(
            "too few steps to judge ({window} averaged iterates, at least {MIN_WINDOW} needed): run more iterations"
        ));
    }
    if replications_per_step < 2 {
        reasons.push(
            "one replication per step gives the gradient no standard error: use more replications per step (or --adaptive)"
                .to_string(),
        );
    }
    if window >= MIN_WINDOW {
        for (i, key) in keys.iter().enumerate() {
            let s = &settling[i];
            let allowed = tolerance * answer[i].abs().max(1.0);
            if s.answer_se.is_nan() || s.answer_se > allowed {
                reasons.push(format!(
                    "{key}: the answer's standard error {} exceeds the tolerance {}: use more replications per step or a smaller learning rate",
                    short(s.answer_se),
                    short(allowed)
                ));
            }
            if !s.settled() {
                reasons.push(format!(
                    "{key}: the iterates still drift ({} from the first to the second half of the averaged steps, noise {}): run more iterations or use a larger learning rate",
                    short(s.drift),
                    short(s.drift_se)
                ));
            }
        }
    }
    if let Some(gradient) = gradient {
        for (key, g) in keys.iter().zip(gradient) {
            if !g.is_stationary() {
                reasons.push(format!(
                    "{key}: the gradient of J at the answer is {} ± {}, not zero: run more iterations or use a larger learning rate",
                    short(g.stationarity),
                    short(Z95 * g.stationarity_se)
                ));
            }
        }
    }
    Verdict {
        converged: reasons.is_empty(),
        reasons,
    }
}

/// A number in 4 significant digits (`n/a` for NaN).
pub fn short(x: f64) -> String {
    if x.is_nan() {
        return "n/a".to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let magnitude = x.abs().log10().floor();
    if !(-4.0..6.0).contains(&magnitude) {
        return format!("{x:.3e}");
    }
    let decimals = (3.0 - magnitude).max(0.0) as usize;
    format!("{x:.decimals$}")
}

/// The norm test of an adaptive search: the replications of the next step, given
/// this step's `replications`, the gradient standard errors `gradient_se` (of the
/// step's mean `∂E[M]/∂θ_i`) and the gradient of `J` there. The step was precise
/// enough if `Σ se_i² ≤ max(θ²·|∇J|², floor²)` (Byrd et al. 2012 with θ =
/// [`NORM_TEST`]); `floor` is the noise that needs no more effort (see
/// [`noise_floor`]). If not, the next step gets the replications that would make
/// it so, at most twice as many and at most [`MAX_ADAPTIVE_REPLICATIONS`]; never
/// fewer than now.
pub fn norm_test(replications: u32, gradient_se: &[f64], gradient_j: &[f64], floor: f64) -> u32 {
    let error2: f64 = gradient_se.iter().map(|se| se * se).sum();
    let norm2: f64 = gradient_j.iter().map(|g| g * g).sum();
    let allowed2 = (NORM_TEST * NORM_TEST * norm2).max(floor * floor);
    let most = MAX_ADAPTIVE_REPLICATIONS.max(replications);
    if error2.is_nan() {
        return (replications.max(1) * 2).min(most);
    }
    if error2 <= allowed2 {
        return replications;
    }
    let variance = error2 * f64::from(replications);
    let wanted = if allowed2 > 0.0 {
        (variance / allowed2).ceil()
    } else {
        f64::INFINITY
    };
    let wanted = wanted.min(f64::from(replications) * 2.0) as u32;
    wanted.clamp(replications, most)
}

/// The gradient noise that needs no more effort: `|tol|·√W / a_k`, with `tol` the
/// tolerated standard errors of the answer (per tuned value) and `W` =
/// [`MIN_WINDOW`]. A step with gain `a_k` moves the iterates by `a_k` times its
/// gradient's noise, and the mean of `W` such steps has about `1/√W` of it: so
/// at that noise the answer reaches its tolerance from the fewest averaged steps,
/// and more replications near the optimum (where `∇J → 0` and the plain norm
/// test would want ever more) would be wasted.
pub fn noise_floor(tolerances: &[f64], gain: f64) -> f64 {
    let tol2: f64 = tolerances.iter().map(|t| t * t).sum();
    tol2.sqrt() * (MIN_WINDOW as f64).sqrt() / gain
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AR(1)-corrected standard error matches the sd of the mean of an AR(1)
    /// series over many independent series.
    #[test]
    fn the_answer_se_covers_autocorrelated_iterates() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let rho: f64 = 0.7;
        let (mut means, mut ses) = (Vec::new(), Vec::new());
        for _ in 0..400 {
            let mut x = 0.0;
            let series: Vec<f64> = (0..400)
                .map(|_| {
                    let z: f64 = rng.random::<f64>() - 0.5;
                    x = rho * x + z;
                    x
                })
                .collect();
            let (mean, se) = mean_and_se(&series);
            means.push(mean);
            ses.push(se);
        }
        let (_, sd_of_means) = crate::stats::mean_sd(&means);
        let mean_se = ses.iter().sum::<f64>() / ses.len() as f64;
        // 400 series estimate the sd within about ±4%.
        assert!(
            (mean_se / sd_of_means - 1.0).abs() < 0.15,
            "{mean_se} vs {sd_of_means}"
        );
    }

    #[test]
    fn the_norm_test_grows_effort_only_when_the_gradient_is_noisy() {
        // se 0.01 against a gradient of 0.5: enough.
        assert_eq!(norm_test(4, &[0.01], &[0.5], 0.0), 4);
        // se 0.1 against 0.05: wants 4·0.01/0.000625 = 64, capped at double.
        assert_eq!(norm_test(4, &[0.1], &[0.05], 0.0), 8);
        // se 0.05 against 0.08: wants ceil(4·0.0025/0.0016) = 7.
        assert_eq!(norm_test(4, &[0.05], &[0.08], 0.0), 7);
        assert_eq!(norm_test(1, &[f64::NAN], &[0.1], 0.0), 2);
        assert_eq!(norm_test(4096, &[1.0], &[0.0], 0.0), 4096);
        // At the optimum (∇J = 0) the floor stops the growth.
        assert_eq!(norm_test(16, &[0.01], &[0.0], 0.02), 16);
        assert_eq!(norm_test(16, &[0.01], &[0.0], 0.009), 20);
        let floor = noise_floor(&[0.03, 0.04], 2.0);
        assert!((floor - 0.05 * 10f64.sqrt() / 2.0).abs() < 1e-15);
    }

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(short(1.23456), "1.235");
        assert_eq!(short(0.000123456), "0.0001235");
        assert_eq!(short(1234.4), "1234");
        assert_eq!(short(-2.0e-7), "-2.000e-7");
        assert_eq!(short(f64::NAN), "n/a");
    }

    #[test]
    fn a_starved_search_is_not_converged_and_says_what_to_change() {
        let keys = vec!["brand.value".to_string()];
        let settling = vec![Settling::of(&[1.0, 1.2, 0.9])];
        let verdict = judge(&keys, 3, &settling, None, &[1.0], 0.01, 1);
        assert!(!verdict.converged);
        let text = verdict.text();
        assert!(text.starts_with("not converged: too few steps"), "{text}");
        assert!(text.contains("more replications per step"), "{text}");
    }

    #[test]
    fn drift_beyond_its_noise_is_not_settled() {
        let walking: Vec<f64> = (0..40)
            .map(|k| f64::from(k) * 0.01 + if k % 3 == 0 { 0.02 } else { 0.0 })
            .collect();
        assert!(!Settling::of(&walking).settled());
        let noisy: Vec<f64> = (0..40)
            .map(|k| if k % 2 == 0 { 0.01 } else { -0.01 })
            .collect();
        assert!(Settling::of(&noisy).settled());
    }
}
