//! The Bass diffusion model fitted to adoptions per period by nonlinear least
//! squares: F. M. Bass (1969), "A new product growth for model consumer durables",
//! Management Science 15(5), 215–227; the per-period form of V. Srinivasan and
//! C. H. Mason (1986), "Nonlinear least squares estimation of new product diffusion
//! models", Marketing Science 5(2), 169–178.
//!
//! With external influence `p`, internal influence `q` and market size `m`, the
//! adopted share is `F(t) = (1 − e^{−(p+q)t}) / (1 + (q/p)·e^{−(p+q)t})` and its
//! density `f(t) = ((p+q)²/p)·e^{−(p+q)t} / (1 + (q/p)·e^{−(p+q)t})²`. Adoptions in
//! period `t` (the interval `(t−1, t]`, periods counted from the launch at 0) are
//! modelled as
//! - `period` (the default): `m·(F(t) − F(t−1))`, what the period really holds;
//! - `density`: `m·f(t)`, the adoption rate at the period's end (Bass's own form).
//!
//! `m` enters linearly, so the fit profiles it out (`m̂ = Σ y·g / Σ g²` for the
//! model shape `g`) and searches `(ln p, ln q)` by Nelder–Mead; standard errors are
//! the usual NLS ones, `s²·(JᵀJ)⁻¹` with `s² = SSE/(n − 3)` and `J` the Jacobian
//! of the model in `(m, p, q)` at the answer.

use nalgebra::DMatrix;

use super::data::Table;
use super::{DataError, Estimate, inverse_spd, nelder_mead};

/// The adopted share `F(t)` of the Bass model.
pub fn cumulative(p: f64, q: f64, t: f64) -> f64 {
    let decay = (-(p + q) * t).exp();
    (1.0 - decay) / (1.0 + (q / p) * decay)
}

/// The adoption density `f(t) = dF/dt` of the Bass model.
pub fn density(p: f64, q: f64, t: f64) -> f64 {
    let decay = (-(p + q) * t).exp();
    let denominator = 1.0 + (q / p) * decay;
    (p + q).powi(2) / p * decay / (denominator * denominator)
}

/// Which function of `t` the adoptions of period `t` are fitted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BassForm {
    /// `m·(F(t) − F(t−1))`: the adoptions the model puts in the period.
    #[default]
    Period,
    /// `m·f(t)`: the adoption rate at the period's end.
    Density,
}

impl BassForm {
    /// The model's adoptions in period `t` per unit of market size.
    pub fn shape(self, p: f64, q: f64, t: f64) -> f64 {
        match self {
            BassForm::Period => cumulative(p, q, t) - cumulative(p, q, t - 1.0),
            BassForm::Density => density(p, q, t),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BassForm::Period => "period",
            BassForm::Density => "density",
        }
    }
}

/// Adoptions per period: `(t, adoptions)` for the periods with a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Adoptions {
    /// The name of the adoption column.
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Reads an adoption table: a `period` column (1, 2, 3, ... in order: period `t`
/// is the interval `(t−1, t]` after the launch) and one column of adoptions, which
/// may have empty cells (left out of the fit) but no negative values.
pub fn read_adoptions(table: &Table) -> Result<Adoptions, DataError> {
    if table.headers.len() != 2 || table.headers[0] != "period" {
        return Err(table.file_error(
            Some(1),
            format!(
                "the header is {:?}; expected two columns: \"period\", then the adoptions per period",
                table.headers.join(",")
            ),
        ));
    }
    let mut points = Vec::new();
    for (i, row) in table.rows.iter().enumerate() {
        let period = table.index(row, 0, "a period")?;
        if period != i as u64 + 1 {
            return Err(table.error(
                row.line,
                0,
                format!(
                    "expected period {} (periods run 1, 2, 3, ... one per row), found {period}",
                    i + 1
                ),
            ));
        }
        if let Some(value) = table.number(row, 1)? {
            if value < 0.0 {
                return Err(table.error(
                    row.line,
                    1,
                    format!("expected a non-negative number of adoptions, found {value}"),
                ));
            }
            points.push((period as f64, value));
        }
    }
    if points.len() < 4 {
        return Err(table.file_error(
            None,
            format!(
                "{} periods with adoptions; the fit of m, p and q needs at least 4",
                points.len()
            ),
        ));
    }
    Ok(Adoptions {
        name: table.headers[1].clone(),
        points,
    })
}

/// A Bass fit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BassFit {
    pub form: BassForm,
    /// `m`, `p`, `q` with NLS standard errors and Wald 95% intervals.
    pub m: Estimate,
    pub p: Estimate,
    pub q: Estimate,
    /// `√(SSE/(n − 3))`.
    pub residual_se: f64,
    pub sse: f64,
    pub periods: usize,
}

/// Why a Bass fit has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BassError(pub String);

/// Fits `m`, `p`, `q` by nonlinear least squares in the given form.
pub fn fit(data: &Adoptions, form: BassForm) -> Result<BassFit, BassError> {
    let points = &data.points;
    let profile = |p: f64, q: f64| -> (f64, f64) {
        let (mut yg, mut gg) = (0.0, 0.0);
        for &(t, y) in points {
            let g = form.shape(p, q, t);
            yg += y * g;
            gg += g * g;
        }
        let m = yg / gg;
        let sse = points
            .iter()
            .map(|&(t, y)| (y - m * form.shape(p, q, t)).powi(2))
            .sum();
        (m, sse)
    };
    let sse = |x: &[f64]| {
        let (m, sse) = profile(x[0].exp(), x[1].exp());
        if m > 0.0 && m.is_finite() {
            sse
        } else {
            f64::INFINITY
        }
    };
    let mut best = None::<super::Minimum>;
    for p in [1e-3, 1e-2, 5e-2] {
        for q in [0.05, 0.3, 1.0] {
            let found = nelder_mead(&sse, &[f64::ln(p), f64::ln(q)], &[0.5, 0.5], 1e-10, 5000);
            if best.as_ref().is_none_or(|b| found.value < b.value) {
                best = Some(found);
            }
        }
    }
    let best = best.expect("starts");
    // Polish from the best point with a smaller simplex.
    let best = nelder_mead(&sse, &best.x, &[0.01, 0.01], 0.0, 5000);
    if !best.value.is_finite() {
        return Err(BassError(
            "no Bass curve with m > 0 fits these adoptions".into(),
        ));
    }
    let (p, q) = (best.x[0].exp(), best.x[1].exp());
    let (m, sse) = profile(p, q);
    let n = points.len();
    let jacobian = DMatrix::from_fn(n, 3, |i, j| {
        let t = points[i].0;
        match j {
            0 => form.shape(p, q, t),
            1 => {
                let h = p * 1e-6;
                m * (form.shape(p + h, q, t) - form.shape(p - h, q, t)) / (2.0 * h)
            }
            _ => {
                let h = q * 1e-6;
                m * (form.shape(p, q + h, t) - form.shape(p, q - h, t)) / (2.0 * h)
            }
        }
    });
    let s2 = sse / (n as f64 - 3.0);
    let covariance = inverse_spd(&(jacobian.transpose() * &jacobian))
        .map(|c| c * s2)
        .unwrap_or_else(|| DMatrix::from_element(3, 3, f64::NAN));
    Ok(BassFit {
        form,
        m: Estimate::wald(m, covariance[(0, 0)].sqrt()),
        p: Estimate::wald(p, covariance[(1, 1)].sqrt()),
        q: Estimate::wald(q, covariance[(2, 2)].sqrt()),
        residual_se: s2.sqrt(),
        sse,
        periods: n,
    })
}

/// How a Bass fit maps onto a scenario: the assumptions the mapping makes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ScenarioMapping {
    /// Days in one period of the data (365 for years, 7 for weeks).
    pub period_days: f64,
    /// The cost per 1000 impressions of the channel that carries `p`.
    pub cpm: f64,
    /// The mean satisfaction of payers (`q = word_of_mouth · mean satisfaction`).
    pub satisfaction: f64,
}

/// The scenario values a Bass fit implies (MODEL.md "One day"): with every
/// exposure adopting (`click_rate = conversion_rate = 1`, one-off purchase, no
/// dormancy, one segment), the day's adoption hazard is `λ + q_day·S_t/N` with
/// `S_t/N = F·satisfaction`, so
/// - `market.population = m`;
/// - impressions per user per day `λ = p / period_days`, bought by a channel of
///   `daily_budget = λ·m·cpm/1000`;
/// - `market.word_of_mouth = q / period_days / satisfaction`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScenarioValues {
    pub population: u64,
    pub impressions_per_user_per_day: f64,
    pub daily_budget: f64,
    pub word_of_mouth: f64,
}

/// See [`ScenarioValues`].
pub fn scenario_values(fit: &BassFit, mapping: &ScenarioMapping) -> ScenarioValues {
    let population = fit.m.estimate.round().max(1.0);
    let lambda = fit.p.estimate / mapping.period_days;
    ScenarioValues {
        population: population as u64,
        impressions_per_user_per_day: lambda,
        daily_budget: lambda * population * mapping.cpm / 1000.0,
        word_of_mouth: fit.q.estimate / mapping.period_days / mapping.satisfaction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The annual sales series often used to illustrate the Bass model (ten years).
    const SALES: [f64; 10] = [
        840.0, 1470.0, 2110.0, 4000.0, 7590.0, 10950.0, 10530.0, 9470.0, 7790.0, 5890.0,
    ];

    fn sales() -> Adoptions {
        Adoptions {
            name: "sales".into(),
            points: SALES
                .iter()
                .enumerate()
                .map(|(i, &y)| ((i + 1) as f64, y))
                .collect(),
        }
    }

    #[test]
    fn density_form_reproduces_the_published_nls_estimates() {
        let fit = fit(&sales(), BassForm::Density).unwrap();
        // m ≈ 67,980 (se ≈ 3,130), p ≈ 0.00659, q ≈ 0.638, residual se ≈ 727.
        assert!((fit.m.estimate - 67_980.0).abs() < 10.0, "{fit:?}");
        assert!((fit.m.se - 3_130.0).abs() < 10.0, "{fit:?}");
        assert_eq!(format!("{:.5}", fit.p.estimate), "0.00659");
        assert_eq!(format!("{:.3}", fit.q.estimate), "0.638");
        assert!((fit.residual_se - 727.0).abs() < 1.0, "{fit:?}");
    }

    #[test]
    fn period_form_reproduces_the_published_nls_estimates() {
        let fit = fit(&sales(), BassForm::Period).unwrap();
        // p ≈ 0.0088, q ≈ 0.642.
        assert_eq!(format!("{:.4}", fit.p.estimate), "0.0088");
        assert_eq!(format!("{:.3}", fit.q.estimate), "0.642");
    }

    #[test]
    fn exact_curve_is_recovered_with_tiny_standard_errors() {
        let (m, p, q) = (50_000.0, 0.02, 0.4);
        for form in [BassForm::Period, BassForm::Density] {
            let data = Adoptions {
                name: "a".into(),
                points: (1..=15)
                    .map(|t| (f64::from(t), m * form.shape(p, q, f64::from(t))))
                    .collect(),
            };
            let fit = fit(&data, form).unwrap();
            assert!((fit.m.estimate / m - 1.0).abs() < 1e-6, "{fit:?}");
            assert!((fit.p.estimate / p - 1.0).abs() < 1e-6, "{fit:?}");
            assert!((fit.q.estimate / q - 1.0).abs() < 1e-6, "{fit:?}");
            assert!(fit.residual_se < 1e-3 * m, "{fit:?}");
        }
    }

    #[test]
    fn density_is_the_derivative_of_the_cumulative_share() {
        let (p, q) = (0.01, 0.5);
        for t in [0.5, 3.0, 9.0] {
            let h = 1e-5;
            let numeric = (cumulative(p, q, t + h) - cumulative(p, q, t - h)) / (2.0 * h);
            assert!((numeric - density(p, q, t)).abs() < 1e-8);
        }
        assert_eq!(cumulative(p, q, 0.0), 0.0);
    }

    #[test]
    fn scenario_values_turn_periods_into_days() {
        let fit = fit(&sales(), BassForm::Period).unwrap();
        let mapping = ScenarioMapping {
            period_days: 365.0,
            cpm: 10.0,
            satisfaction: 0.8,
        };
        let values = scenario_values(&fit, &mapping);
        assert_eq!(values.population, fit.m.estimate.round() as u64);
        assert!((values.word_of_mouth - fit.q.estimate / 365.0 / 0.8).abs() < 1e-15);
        let lambda = fit.p.estimate / 365.0;
        assert!((values.daily_budget / (values.population as f64) * 100.0 - lambda).abs() < 1e-15);
    }

    #[test]
    fn adoption_tables_are_checked() {
        let read = |text: &str| read_adoptions(&Table::parse(text.as_bytes(), "a.csv").unwrap());
        assert_eq!(
            read("period,sales\n1,5\n2,\n3,7\n4,8\n5,9\n")
                .unwrap()
                .points
                .len(),
            4
        );
        let cases = [
            (
                "period,sales\n1,5\n3,6\n",
                "a.csv:3: column 1 (\"period\"): expected period 2",
            ),
            (
                "period,sales\n1,5\n2,-6\n",
                "a.csv:3: column 2 (\"sales\"): expected a non-negative",
            ),
            (
                "period,sales\n1,5\n2,abc\n",
                "a.csv:3: column 2 (\"sales\"): expected a number",
            ),
            ("day,sales\n1,5\n", "a.csv:1: the header"),
            ("period,sales\n1,5\n2,6\n", "needs at least 4"),
        ];
        for (text, expected) in cases {
            let error = read(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
