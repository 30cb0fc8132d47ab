//! Learning scenario values from data: the shifted-beta-geometric churn model
//! (`churn`), the Bass diffusion model (`bass`) and the calibration of any
//! scenario value to observed daily series by simulated moments (`calibrate`),
//! plus what they share: data-table errors, the Nelder–Mead minimiser (argmin) and
//! numerical derivatives.
//!
//! Must not depend on: the CLI (`commands::fit` and `commands::calibrate` parse the
//! arguments and write the files).

pub mod bass;
pub mod calibrate;
pub mod churn;
pub mod data;

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use nalgebra::DMatrix;

/// The 97.5% quantile of the standard normal: a 95% interval is `±Z95·se`.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A bad cell, row or header of a data table: where it is and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default(), column.as_ref().map(|c| format!(": column {c}")).unwrap_or_default())]
pub struct DataError {
    /// The data file as the user named it.
    pub file: String,
    /// 1-based line, where known.
    pub line: Option<u64>,
    /// 1-based column number and its header, e.g. `3 ("conversions")`.
    pub column: Option<String>,
    /// What was found and what was expected.
    pub message: String,
}

/// A function of a parameter vector for argmin; `+∞` outside its domain.
struct Objective<'a>(&'a (dyn Fn(&[f64]) -> f64 + Sync));

impl CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Self::Param) -> Result<f64, argmin::core::Error> {
        let value = (self.0)(x);
        Ok(if value.is_nan() { f64::INFINITY } else { value })
    }
}

/// The result of a Nelder–Mead search.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub iterations: u64,
}

/// Minimises `f` by Nelder–Mead (argmin's `NelderMead`) from the simplex of
/// `start` and `start + step_i·e_i`, until the sd of the simplex's values is below
/// `tolerance` or after `max_iters` iterations. `f` may return `+∞` (or NaN) where
/// it is undefined.
pub fn nelder_mead(
    f: &(dyn Fn(&[f64]) -> f64 + Sync),
    start: &[f64],
    step: &[f64],
    tolerance: f64,
    max_iters: u64,
) -> Minimum {
    let mut simplex = vec![start.to_vec()];
    for (i, h) in step.iter().enumerate() {
        let mut vertex = start.to_vec();
        vertex[i] += h;
        simplex.push(vertex);
    }
    let solver = NelderMead::new(simplex)
        .with_sd_tolerance(tolerance.max(0.0))
        .expect("a non-negative tolerance");
    let result = Executor::new(Objective(f), solver)
        .configure(|state| state.max_iters(max_iters))
        .run();
    match result {
        Ok(result) => {
            let state = result.state();
            let x = state
                .get_best_param()
                .cloned()
                .unwrap_or_else(|| start.to_vec());
            Minimum {
                value: f(&x),
                x,
                iterations: state.get_iter(),
            }
        }
        // argmin fails only on solver bugs; fall back to the start, reported as such.
        Err(_) => Minimum {
            x: start.to_vec(),
            value: f(start),
            iterations: 0,
        },
    }
}

/// The Hessian of `f` at `x` by central differences with steps `h` (the standard
/// second-difference formulas; error O(h²)).
pub fn hessian(f: &dyn Fn(&[f64]) -> f64, x: &[f64], h: &[f64]) -> DMatrix<f64> {
    let k = x.len();
    let at = |moves: &[(usize, f64)]| {
        let mut y = x.to_vec();
        for &(i, d) in moves {
            y[i] += d;
        }
        f(&y)
    };
    let f0 = f(x);
    let mut hess = DMatrix::zeros(k, k);
    for i in 0..k {
        hess[(i, i)] = (at(&[(i, h[i])]) - 2.0 * f0 + at(&[(i, -h[i])])) / (h[i] * h[i]);
        for j in 0..i {
            let value = (at(&[(i, h[i]), (j, h[j])])
                - at(&[(i, h[i]), (j, -h[j])])
                - at(&[(i, -h[i]), (j, h[j])])
                + at(&[(i, -h[i]), (j, -h[j])]))
                / (4.0 * h[i] * h[j]);
            hess[(i, j)] = value;
            hess[(j, i)] = value;
        }
    }
    hess
}

/// The inverse of a symmetric positive-definite matrix (by Cholesky), or `None`
/// when it is singular or not positive definite.
pub fn inverse_spd(matrix: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let inverse = matrix.clone().cholesky()?.inverse();
    inverse.iter().all(|x| x.is_finite()).then_some(inverse)
}

/// Correlations from a covariance matrix: `cov_ij / sqrt(cov_ii·cov_jj)`.
pub fn correlations(covariance: &DMatrix<f64>) -> DMatrix<f64> {
    let k = covariance.nrows();
    DMatrix::from_fn(k, k, |i, j| {
        covariance[(i, j)] / (covariance[(i, i)] * covariance[(j, j)]).sqrt()
    })
}

/// A fitted value with its standard error and 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub estimate: f64,
    pub se: f64,
    pub ci95: [f64; 2],
}

impl Estimate {
    /// The Wald interval `x ± 1.96·se`.
    pub fn wald(estimate: f64, se: f64) -> Self {
        Estimate {
            estimate,
            se,
            ci95: [estimate - Z95 * se, estimate + Z95 * se],
        }
    }

    /// For a positive value: the interval `exp(ln x ± 1.96·se(ln x))` with
    /// `se(ln x) = se/x` (the delta method), which stays positive.
    pub fn log_wald(estimate: f64, se: f64) -> Self {
        let log_se = se / estimate;
        Estimate {
            estimate,
            se,
            ci95: [
                estimate * (-Z95 * log_se).exp(),
                estimate * (Z95 * log_se).exp(),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nelder_mead_finds_the_minimum_of_a_quadratic() {
        let f = |x: &[f64]| (x[0] - 1.5).powi(2) + 10.0 * (x[1] + 0.5).powi(2);
        let m = nelder_mead(&f, &[0.0, 0.0], &[0.5, 0.5], 1e-14, 2000);
        assert!(
            (m.x[0] - 1.5).abs() < 1e-5 && (m.x[1] + 0.5).abs() < 1e-5,
            "{m:?}"
        );
    }

    #[test]
    fn nelder_mead_stays_out_of_an_undefined_region() {
        let f = |x: &[f64]| {
            if x[0] <= 0.0 {
                f64::NAN
            } else {
                (x[0].ln() - 1.0).powi(2)
            }
        };
        let m = nelder_mead(&f, &[1.0], &[0.5], 1e-14, 2000);
        assert!((m.x[0] - std::f64::consts::E).abs() < 1e-4, "{m:?}");
    }

    #[test]
    fn hessian_of_a_quadratic_is_exact() {
        let f = |x: &[f64]| 3.0 * x[0] * x[0] + 2.0 * x[0] * x[1] + 5.0 * x[1] * x[1];
        let h = hessian(&f, &[0.3, -0.7], &[1e-3, 1e-3]);
        let expected = [[6.0, 2.0], [2.0, 10.0]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((h[(i, j)] - expected[i][j]).abs() < 1e-5, "{h}");
            }
        }
        let inverse = inverse_spd(&h).unwrap();
        assert!((inverse[(0, 0)] - 10.0 / 56.0).abs() < 1e-6);
        assert!(inverse_spd(&DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, 1.0])).is_none());
    }

    #[test]
    fn data_errors_name_file_line_and_column() {
        let e = DataError {
            file: "a.csv".into(),
            line: Some(4),
            column: Some("3 (\"conversions\")".into()),
            message: "expected a number, found \"x\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "a.csv:4: column 3 (\"conversions\"): expected a number, found \"x\""
        );
    }
}
