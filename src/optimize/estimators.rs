//! Gradient estimates of `∂E[M]/∂θ` from simulations (MODEL.md, "The outer loop"):
//! central finite differences (`fd`), simultaneous perturbation (`spsa`) and the
//! score function (`lr`), each from per-replication samples so it has a standard error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{OptimizeError, Problem};
use crate::metrics::METRIC_NAMES;
use crate::outcome::Outcome;
use crate::scenario::{Scenario, ScenarioError};
use crate::stats::mean_sd;
use crate::study::run_replications;

/// Runs replications of the problem's scenario at given tuned values and counts them.
pub struct Evaluator<'a> {
    problem: &'a Problem,
    /// Index of the objective in `METRIC_NAMES`.
    metric: usize,
    objective: &'a str,
    pool: &'a rayon::ThreadPool,
    simulations: AtomicU64,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        problem: &'a Problem,
        objective: &'a str,
        pool: &'a rayon::ThreadPool,
    ) -> Result<Self, OptimizeError> {
        let metric = METRIC_NAMES
            .iter()
            .position(|&m| m == objective)
            .ok_or_else(|| {
                OptimizeError::Unsupported(format!(
                    "objective {objective:?} is not a metric; expected one of: {}",
                    METRIC_NAMES.join(", ")
                ))
            })?;
        Ok(Evaluator {
            problem,
            metric,
            objective,
            pool,
            simulations: AtomicU64::new(0),
        })
    }

    /// Replications simulated so far.
    pub fn simulations(&self) -> u64 {
        self.simulations.load(Ordering::Relaxed)
    }

    /// The outcomes of `replications` at `theta`, with the scenario they ran.
    pub fn outcomes_at(
        &self,
        theta: &[f64],
        replications: &[u32],
    ) -> Result<(Vec<Outcome>, Arc<Scenario>), ScenarioError> {
        let scenario = self.problem.scenario_at(theta)?;
        let study = run_replications(&scenario, replications, self.pool, &|_| {});
        self.simulations
            .fetch_add(replications.len() as u64, Ordering::Relaxed);
        Ok((study.outcomes, scenario))
    }

    /// The objective metric of each of `replications` at `theta`.
    pub fn metric_at(
        &self,
        theta: &[f64],
        replications: &[u32],
    ) -> Result<Vec<f64>, ScenarioError> {
        let (outcomes, _) = self.outcomes_at(theta, replications)?;
        Ok(outcomes.iter().map(|o| self.metric_of(o)).collect())
    }

    fn metric_of(&self, outcome: &Outcome) -> f64 {
        outcome.metrics().0[self.metric]
    }
}

/// A gradient estimate with its standard error, and the objective metric per
/// replication near θ.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientEstimate {
    pub gradient: Vec<f64>,
    pub gradient_se: Vec<f64>,
    pub objective: Vec<f64>,
}

/// Mean and standard error of per-replication samples (NaN se for one sample).
fn mean_se(samples: &[f64]) -> (f64, f64) {
    let (mean, sd) = mean_sd(samples);
    (mean, sd / (samples.len() as f64).sqrt())
}

/// `θ ± c·direction`, each projected onto its bounds; the difference of the two
/// is the denominator, so a point at a bound gives a one-sided difference.
fn perturbed(problem: &Problem, theta: &[f64], c: f64, direction: &[f64]) -> [Vec<f64>; 2] {
    let mut plus: Vec<f64> = theta
        .iter()
        .zip(direction)
        .map(|(x, d)| x + c * d)
        .collect();
    let mut minus: Vec<f64> = theta
        .iter()
        .zip(direction)
        .map(|(x, d)| x - c * d)
        .collect();
    problem.project(&mut plus);
    problem.project(&mut minus);
    [plus, minus]
}

/// Per replication, the difference quotient `(M(θ⁺) − M(θ⁻)) / width` of the
/// metric at the two perturbed points.
fn difference_quotients(high: &[f64], low: &[f64], width: f64) -> Vec<f64> {
    high.iter().zip(low).map(|(h, l)| (h - l) / width).collect()
}

/// `fd`: for each tuned value `i`, `(M(θ + c·e_i) − M(θ − c·e_i)) / 2c` per
/// replication. With `plus == minus` (as the optimiser calls it) the two runs
/// share common random numbers; other indices give independent runs.
pub fn finite_difference(
    evaluator: &Evaluator,
    theta: &[f64],
    c: f64,
    plus: &[u32],
    minus: &[u32],
) -> Result<GradientEstimate, ScenarioError> {
    let mut gradient = Vec::with_capacity(theta.len());
    let mut gradient_se = Vec::with_capacity(theta.len());
    let mut objective = vec![0.0; plus.len()];
    for i in 0..theta.len() {
        let mut direction = vec![0.0; theta.len()];
        direction[i] = 1.0;
        let [up, down] = perturbed(evaluator.problem, theta, c, &direction);
        let high = evaluator.metric_at(&up, plus)?;
        let low = evaluator.metric_at(&down, minus)?;
        let (g, se) = mean_se(&difference_quotients(&high, &low, up[i] - down[i]));
        gradient.push(g);
        gradient_se.push(se);
        for (o, (h, l)) in objective.iter_mut().zip(high.iter().zip(&low)) {
            *o += (h + l) / (2.0 * theta.len() as f64);
        }
    }
    Ok(GradientEstimate {
        gradient,
        gradient_se,
        objective,
    })
}

/// `spsa`: one pair of runs at `θ ± c·Δ` on common random numbers, whatever the
/// number of tuned values; `ĝ_i = (M(θ + c·Δ) − M(θ − c·Δ)) / (2c·Δ_i)` per replication.
pub fn spsa(
    evaluator: &Evaluator,
    theta: &[f64],
    c: f64,
    signs: &[f64],
    replications: &[u32],
) -> Result<GradientEstimate, ScenarioError> {
    let [up, down] = perturbed(evaluator.problem, theta, c, signs);
    let high = evaluator.metric_at(&up, replications)?;
    let low = evaluator.metric_at(&down, replications)?;
    let (gradient, gradient_se) = (0..theta.len())
        .map(|i| mean_se(&difference_quotients(&high, &low, up[i] - down[i])))
        .unzip();
    Ok(GradientEstimate {
        gradient,
        gradient_se,
        objective: high.iter().zip(&low).map(|(h, l)| (h + l) / 2.0).collect(),
    })
}

/// `lr`: the score-function estimator of `∂E[M]/∂V`, per replication
/// `(M_j − b_j)·score_j + ∂M_j/∂V|direct`, where `score_j = Σ β·(x − p)` over the
/// logistic draws `V` enters (computed by the engine), and the baseline `b_j` is the
/// mean of `M` over the step's other replications (independent of replication
/// `j`, so the estimate stays unbiased while its variance drops).
/// Tunes `brand.value` only; needs at least two replications.
pub fn likelihood_ratio(
    evaluator: &Evaluator,
    theta: &[f64],
    replications: &[u32],
) -> Result<GradientEstimate, ScenarioError> {
    let (outcomes, scenario) = evaluator.outcomes_at(theta, replications)?;
    let metric: Vec<f64> = outcomes.iter().map(|o| evaluator.metric_of(o)).collect();
    let total: f64 = metric.iter().sum();
    let others = (metric.len() - 1).max(1) as f64;
    let direct = direct_derivative(&scenario, evaluator.objective);
    let samples: Vec<f64> = outcomes
        .iter()
        .zip(&metric)
        .map(|(outcome, &m)| {
            let baseline = (total - m) / others;
            (m - baseline) * outcome.score + direct
        })
        .collect();
    let (g, se) = mean_se(&samples);
    Ok(GradientEstimate {
        gradient: vec![g],
        gradient_se: vec![se],
        objective: metric,
    })
}

/// The part of `∂M/∂V` that does not go through random draws: the brand's spend
/// `T·κ·V²` (MODEL.md, "Spend"), which moves `spend` and `profit`.
pub fn direct_derivative(scenario: &Scenario, objective: &str) -> f64 {
    let spend = 2.0
        * scenario.brand.cost_per_day
        * scenario.brand.value
        * f64::from(scenario.simulation.days);
    match objective {
        "spend" => spend,
        "profit" => -spend,
        _ => 0.0,
    }
}
