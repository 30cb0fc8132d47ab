//! The shifted-beta-geometric churn model fitted by maximum likelihood to cohort
//! survival tables: P. S. Fader and B. G. S. Hardie (2007), "How to project
//! customer retention", Journal of Interactive Marketing 21(1), 76–90.
//!
//! Each customer churns at a renewal with its own probability `θ ~ Beta(α, β)`
//! (MODEL.md: the user's `π_u`, the scenario's `churn_alpha`, `churn_beta`), so
//! - `P(T = 1) = α/(α+β)`, `P(T = t) = P(T = t−1)·(β+t−2)/(α+β+t−1)`;
//! - survival `S(t) = S(t−1)·(β+t−1)/(α+β+t−1)`, `S(0) = 1`;
//! - retention `r(t) = S(t)/S(t−1) = (β+t−1)/(α+β+t−1)`, rising with `t`.
//!
//! A cohort of `n_0` customers with `n_t` still active after renewal `t = 1..k`
//! (later cohorts are observed for fewer periods: right-censored) has the
//! log-likelihood (their eq. 6)
//! `Σ_{t=1..k} (n_{t−1} − n_t)·ln P(T = t) + n_k·ln S(k)`; cohorts add up.

use nalgebra::DMatrix;

use super::data::Table;
use super::{DataError, Estimate, hessian, inverse_spd, nelder_mead};

/// One cohort: its name (the column header) and its active customers at period
/// `0, 1, ..., k` (`active[0]` is the cohort's size).
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    pub name: String,
    pub active: Vec<f64>,
}

/// Survival `S(t)` of the sBG model: the share of a cohort still active after
/// renewal `t` (`S(0) = 1`).
pub fn survival(alpha: f64, beta: f64, t: u32) -> f64 {
    (1..=t).map(|i| retention(alpha, beta, i)).product()
}

/// Retention `r(t) = (β+t−1)/(α+β+t−1)` of the sBG model: the chance that a
/// customer active after renewal `t−1` renews at `t` (`t >= 1`).
pub fn retention(alpha: f64, beta: f64, t: u32) -> f64 {
    let t = f64::from(t);
    (beta + t - 1.0) / (alpha + beta + t - 1.0)
}

/// The log-likelihood of the cohorts under `sBG(α, β)` (Fader & Hardie 2007, eq. 6);
/// `-∞` for parameters that are not both positive.
pub fn log_likelihood(alpha: f64, beta: f64, cohorts: &[Cohort]) -> f64 {
    if !(alpha > 0.0 && beta > 0.0) {
        return f64::NEG_INFINITY;
    }
    let mut total = 0.0;
    for cohort in cohorts {
        // ln S(t−1), updated as t grows.
        let mut log_survival = 0.0;
        for t in 1..cohort.active.len() {
            let tf = t as f64;
            let log_churn_at_t = log_survival + (alpha / (alpha + beta + tf - 1.0)).ln();
            log_survival += ((beta + tf - 1.0) / (alpha + beta + tf - 1.0)).ln();
            let lost = cohort.active[t - 1] - cohort.active[t];
            if lost > 0.0 {
                total += lost * log_churn_at_t;
            }
        }
        let last = *cohort.active.last().expect("a cohort has a size");
        if last > 0.0 {
            total += last * log_survival;
        }
    }
    total
}

/// Reads a cohort table: a `period` column (0, 1, 2, ... in order, period 0 being
/// the cohorts' sizes) and one column per cohort of active customers. A cohort may
/// end early (empty cells after its last period: right-censored) but not have gaps,
/// must start with a positive size and may never grow.
pub fn read_cohorts(table: &Table) -> Result<Vec<Cohort>, DataError> {
    if table.headers[0] != "period" {
        return Err(table.file_error(
            Some(1),
            format!(
                "column 1 is {:?}; expected \"period\", then one column per cohort",
                table.headers[0]
            ),
        ));
    }
    if table.headers.len() < 2 {
        return Err(table.file_error(
            Some(1),
            "no cohort column; expected \"period\", then one column per cohort".into(),
        ));
    }
    let mut cohorts: Vec<Cohort> = table.headers[1..]
        .iter()
        .map(|name| Cohort {
            name: name.clone(),
            active: Vec::new(),
        })
        .collect();
    // Per cohort, the line of its first empty cell once it has ended.
    let mut ended: Vec<Option<u64>> = vec![None; cohorts.len()];
    for (expected, row) in table.rows.iter().enumerate() {
        let period = table.index(row, 0, "a period")?;
        if period != expected as u64 {
            return Err(table.error(
                row.line,
                0,
                format!("expected period {expected} (periods run 0, 1, 2, ... one per row), found {period}"),
            ));
        }
        for (c, cohort) in cohorts.iter_mut().enumerate() {
            let column = c + 1;
            let Some(value) = table.number(row, column)? else {
                if period == 0 {
                    return Err(table.error(
                        row.line,
                        column,
                        "the cohort's size at period 0 is missing; expected a positive number"
                            .into(),
                    ));
                }
                ended[c].get_or_insert(row.line);
                continue;
            };
            if let Some(line) = ended[c] {
                return Err(table.error(
                    row.line,
                    column,
                    format!("a value after the cohort's empty cell on line {line}; a cohort may end early but have no gaps"),
                ));
            }
            if value < 0.0 || (period == 0 && value <= 0.0) {
                return Err(table.error(
                    row.line,
                    column,
                    format!(
                        "expected a {} number of customers, found {value}",
                        if period == 0 {
                            "positive"
                        } else {
                            "non-negative"
                        }
                    ),
                ));
            }
            if let Some(&previous) = cohort.active.last()
                && value > previous
            {
                return Err(table.error(
                    row.line,
                    column,
                    format!("the cohort grows from {previous} to {value}; survivors can only stay or fall"),
                ));
            }
            cohort.active.push(value);
        }
    }
    if cohorts.iter().all(|c| c.active.len() < 2) {
        return Err(table.file_error(
            None,
            "no cohort has a period after 0; expected survivors for at least one renewal".into(),
        ));
    }
    Ok(cohorts)
}

/// The maximum-likelihood fit of `sBG(α, β)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnFit {
    /// `α` and `β` with standard errors from the observed information (the inverse
    /// Hessian of `−ln L` at the maximum) and 95% intervals `exp(ln x ± 1.96·se/x)`.
    pub alpha: Estimate,
    pub beta: Estimate,
    /// The correlation of the estimates of `α` and `β`.
    pub correlation: f64,
    pub log_likelihood: f64,
}

/// Why a fit has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct FitError(pub String);

/// Fits `sBG(α, β)` to the cohorts by maximum likelihood: Nelder–Mead on
/// `(ln α, ln β)` from several starts, the best kept.
pub fn fit(cohorts: &[Cohort]) -> Result<ChurnFit, FitError> {
    let negative = |x: &[f64]| -log_likelihood(x[0].exp(), x[1].exp(), cohorts);
    let best = [[0.0, 0.0], [-1.0, 1.0], [1.0, 2.0], [-2.0, -1.0]]
        .iter()
        .map(|start| nelder_mead(&negative, start, &[0.5, 0.5], 1e-13, 5000))
        .min_by(|a, b| a.value.total_cmp(&b.value))
        .expect("starts");
    if !best.value.is_finite() {
        return Err(FitError(
            "the likelihood has no maximum on these cohorts".into(),
        ));
    }
    let (alpha, beta) = (best.x[0].exp(), best.x[1].exp());
    if alpha > 1e6 || beta > 1e6 || alpha < 1e-6 || beta < 1e-6 {
        return Err(FitError(format!(
            "the likelihood keeps rising towards a boundary (alpha = {alpha:.3e}, beta = {beta:.3e}): \
             the cohorts do not show the heterogeneity the sBG model needs (e.g. no churn at all, \
             or everyone churns at once)"
        )));
    }
    let negative_natural = |x: &[f64]| -log_likelihood(x[0], x[1], cohorts);
    let information = hessian(
        &negative_natural,
        &[alpha, beta],
        &[alpha * 1e-4, beta * 1e-4],
    );
    let covariance =
        inverse_spd(&information).unwrap_or_else(|| DMatrix::from_element(2, 2, f64::NAN));
    let (se_alpha, se_beta) = (covariance[(0, 0)].sqrt(), covariance[(1, 1)].sqrt());
    Ok(ChurnFit {
        alpha: Estimate::log_wald(alpha, se_alpha),
        beta: Estimate::log_wald(beta, se_beta),
        correlation: covariance[(0, 1)] / (se_alpha * se_beta),
        log_likelihood: -best.value,
    })
}

/// One period of the fitted curves.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    pub period: u32,
    /// `S(t)`.
    pub survival: f64,
    /// `r(t)` (none at period 0).
    pub retention: Option<f64>,
}

/// The fitted survival and retention curves over periods `0..=periods`.
pub fn curve(alpha: f64, beta: f64, periods: u32) -> Vec<CurvePoint> {
    (0..=periods)
        .map(|t| CurvePoint {
            period: t,
            survival: survival(alpha, beta, t),
            retention: (t > 0).then(|| retention(alpha, beta, t)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cohort(name: &str, active: &[f64]) -> Cohort {
        Cohort {
            name: name.into(),
            active: active.to_vec(),
        }
    }

    /// Fader & Hardie (2007), Table 1: survivors per 1000 of the "regular" and
    /// "high end" cohorts over years 0–7.
    const REGULAR: [f64; 8] = [1000.0, 631.0, 468.0, 382.0, 326.0, 289.0, 262.0, 241.0];
    const HIGH_END: [f64; 8] = [1000.0, 869.0, 743.0, 653.0, 593.0, 551.0, 517.0, 491.0];

    #[test]
    fn regular_cohort_reproduces_fader_hardie_estimates() {
        let fit = fit(&[cohort("regular", &REGULAR)]).unwrap();
        assert_eq!(format!("{:.3}", fit.alpha.estimate), "0.704");
        assert_eq!(format!("{:.3}", fit.beta.estimate), "1.182");
        // The log-likelihood from the Beta functions of their eq. 2 and 3:
        // P(T = t) = B(α+1, β+t−1)/B(α, β), S(t) = B(α, β+t)/B(α, β).
        let (a, b) = (fit.alpha.estimate, fit.beta.estimate);
        let ln_b = statrs::function::beta::ln_beta;
        let mut direct = 0.0;
        for t in 1..REGULAR.len() {
            let tf = t as f64;
            direct += (REGULAR[t - 1] - REGULAR[t]) * (ln_b(a + 1.0, b + tf - 1.0) - ln_b(a, b));
        }
        direct += REGULAR[7] * (ln_b(a, b + 7.0) - ln_b(a, b));
        assert!(
            (fit.log_likelihood - direct).abs() < 1e-8,
            "{} {direct}",
            fit.log_likelihood
        );
    }

    #[test]
    fn high_end_cohort_reproduces_fader_hardie_estimates() {
        let fit = fit(&[cohort("high end", &HIGH_END)]).unwrap();
        assert_eq!(format!("{:.3}", fit.alpha.estimate), "0.668");
        assert_eq!(format!("{:.3}", fit.beta.estimate), "3.806");
        assert!(fit.alpha.ci95[0] < 0.668 && 0.668 < fit.alpha.ci95[1]);
        assert!(fit.alpha.se > 0.0 && fit.beta.se > 0.0);
    }

    #[test]
    fn survival_and_retention_follow_the_recursion() {
        let (a, b) = (0.704, 1.182);
        assert_eq!(survival(a, b, 0), 1.0);
        assert!((survival(a, b, 1) - b / (a + b)).abs() < 1e-15);
        for t in 2..10 {
            let pmf_t = survival(a, b, t - 1) - survival(a, b, t);
            let pmf_prev = survival(a, b, t - 2) - survival(a, b, t - 1);
            let ratio = (b + f64::from(t) - 2.0) / (a + b + f64::from(t) - 1.0);
            assert!((pmf_t - pmf_prev * ratio).abs() < 1e-12);
            assert!(retention(a, b, t) > retention(a, b, t - 1));
        }
    }

    #[test]
    fn standard_errors_shrink_like_one_over_root_n() {
        let small = fit(&[cohort("r", &REGULAR)]).unwrap();
        let big: Vec<f64> = REGULAR.iter().map(|x| x * 4.0).collect();
        let big = fit(&[cohort("r", &big)]).unwrap();
        assert!((big.alpha.estimate - small.alpha.estimate).abs() < 1e-5);
        assert!((small.alpha.se / big.alpha.se - 2.0).abs() < 1e-3);
    }

    #[test]
    fn censored_cohorts_add_their_likelihoods() {
        let short = cohort("later", &REGULAR[..4]);
        let both = [cohort("first", &REGULAR), short.clone()];
        let sum = log_likelihood(0.7, 1.2, &[cohort("first", &REGULAR)])
            + log_likelihood(0.7, 1.2, &[short]);
        assert!((log_likelihood(0.7, 1.2, &both) - sum).abs() < 1e-9);
    }

    #[test]
    fn cohort_tables_are_checked_cell_by_cell() {
        let read = |text: &str| read_cohorts(&Table::parse(text.as_bytes(), "c.csv").unwrap());
        let cohorts = read("period,a,b\n0,1000,500\n1,631,300\n2,468,\n").unwrap();
        assert_eq!(cohorts[1].active, [500.0, 300.0]);
        let cases = [
            (
                "period,a\n0,1000\n1,1200\n",
                "c.csv:3: column 2 (\"a\"): the cohort grows",
            ),
            (
                "period,a\n0,1000\n1,x\n",
                "c.csv:3: column 2 (\"a\"): expected a number",
            ),
            (
                "period,a\n0,1000\n2,900\n",
                "c.csv:3: column 1 (\"period\"): expected period 1",
            ),
            (
                "period,a,b\n0,1000,9\n1,,8\n2,5,7\n",
                "c.csv:4: column 2 (\"a\"): a value after",
            ),
            ("year,a\n0,1000\n", "c.csv:1: column 1 is \"year\""),
            (
                "period,a\n0,\n1,5\n",
                "c.csv:2: column 2 (\"a\"): the cohort's size",
            ),
            ("period,a\n0,1000\n1,-1\n", "non-negative"),
            ("period,a\n0,1000\n", "no cohort has a period after 0"),
        ];
        for (text, expected) in cases {
            let error = read(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_cohort_without_churn_has_no_interior_maximum() {
        let error = fit(&[cohort("loyal", &[100.0, 100.0, 100.0])]).unwrap_err();
        assert!(error.0.contains("boundary"), "{error}");
    }
}
