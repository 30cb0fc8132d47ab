//! Gradient estimates of `∂E[M]/∂θ` from simulations (MODEL.md, "The outer loop"):
//! central finite differences (`fd`), simultaneous perturbation (`spsa`) and the
//! score function, user by user (`lr`) or over the whole objective (`lr-whole`),
//! each from per-replication samples so it has a standard error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{OptimizeError, Problem};
use crate::engine::score::ScoreWeighted;
use crate::metrics::METRIC_NAMES;
use crate::outcome::Outcome;
use crate::scenario::{Scenario, ScenarioError};
use crate::stats::mean_sd;
use crate::study::run_replications;

/// Outcomes with their score-weighted counts, and the scenario they ran.
pub type ScoredRuns = (Vec<(Outcome, ScoreWeighted)>, Arc<Scenario>);

/// Per replication: the difference quotients, and the metric at the `+` and `−` points.
pub type Quotients = (Vec<f64>, Vec<f64>, Vec<f64>);

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

    /// [`Self::outcomes_at`] with each outcome's `score` (`lr-whole`).
    pub fn outcomes_with_score_at(
        &self,
        theta: &[f64],
        replications: &[u32],
    ) -> Result<(Vec<Outcome>, Arc<Scenario>), ScenarioError> {
        use rayon::prelude::*;
        let scenario = self.problem.scenario_at(theta)?;
        // Waves of one replication per thread, as `run_replications` does.
        let wave = self.pool.current_num_threads().max(1);
        let mut outcomes = Vec::with_capacity(replications.len());
        for chunk in replications.chunks(wave) {
            outcomes.extend(self.pool.install(|| {
                chunk
                    .par_iter()
                    .with_max_len(1)
                    .map(|&j| crate::engine::simulate_scored(&scenario, j))
                    .collect::<Vec<_>>()
            }));
        }
        self.simulations
            .fetch_add(replications.len() as u64, Ordering::Relaxed);
        Ok((outcomes, scenario))
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

    /// The outcomes of `replications` at `theta` with their score-weighted counts
    /// (the per-user score tracked; the outcomes are those of [`Self::outcomes_at`]).
    pub fn scored_outcomes_at(
        &self,
        theta: &[f64],
        replications: &[u32],
    ) -> Result<ScoredRuns, ScenarioError> {
        use rayon::prelude::*;
        let scenario = self.problem.scenario_at(theta)?;
        // Waves of one replication per thread, as `run_replications` does, so no
        // more Worlds are in memory than threads.
        let wave = self.pool.current_num_threads().max(1);
        let mut results = Vec::with_capacity(replications.len());
        for chunk in replications.chunks(wave) {
            results.extend(self.pool.install(|| {
                chunk
                    .par_iter()
                    .with_max_len(1)
                    .map(|&j| crate::engine::simulate_with_scores(&scenario, j))
                    .collect::<Vec<_>>()
            }));
        }
        self.simulations
            .fetch_add(replications.len() as u64, Ordering::Relaxed);
        Ok((results, scenario))
    }

    /// The objective's name.
    pub fn objective(&self) -> &str {
        self.objective
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

/// The largest `t >= 0` with `θ + t·d` inside the bounds of every tuned value
/// (infinite if no bound limits it).
pub fn room(problem: &Problem, theta: &[f64], direction: &[f64]) -> f64 {
    theta
        .iter()
        .zip(direction)
        .zip(&problem.parameters)
        .map(|((&x, &d), p)| {
            if d > 0.0 {
                (p.upper - x) / d
            } else if d < 0.0 {
                (p.lower - x) / d
            } else {
                f64::INFINITY
            }
        })
        .fold(f64::INFINITY, f64::min)
        .max(0.0)
}

/// Per replication, the difference quotient `(M(θ + a·d) − M(θ − b·d)) / (a + b)`
/// along `direction`, with `a, b = min(c, room)` on each side so both points stay
/// inside the bounds (one-sided at a bound; zero if neither side has room). Also
/// the metric at the two points.
pub fn directional(
    evaluator: &Evaluator,
    theta: &[f64],
    direction: &[f64],
    c: f64,
    replications: &[u32],
) -> Result<Quotients, ScenarioError> {
    let reversed: Vec<f64> = direction.iter().map(|d| -d).collect();
    let a = c.min(room(evaluator.problem, theta, direction));
    let b = c.min(room(evaluator.problem, theta, &reversed));
    let at = |t: f64| -> Vec<f64> {
        theta
            .iter()
            .zip(direction)
            .map(|(x, d)| x + t * d)
            .collect()
    };
    if a + b <= 0.0 {
        let metric = evaluator.metric_at(theta, replications)?;
        return Ok((vec![0.0; replications.len()], metric.clone(), metric));
    }
    let high = evaluator.metric_at(&at(a), replications)?;
    let low = evaluator.metric_at(&at(-b), replications)?;
    Ok((difference_quotients(&high, &low, a + b), high, low))
}

/// `fd` for a problem with `--budget` groups: for a free value `i` the direction
/// `e_i`; for a value of a group `g` of `n` values the zero-sum direction
/// `e_i − 1_g/n`, whose derivative `∂_i − mean_g ∂` is the `i`-th component of
/// the gradient projected onto the constraint.
pub fn finite_difference_constrained(
    evaluator: &Evaluator,
    theta: &[f64],
    c: f64,
    replications: &[u32],
) -> Result<GradientEstimate, ScenarioError> {
    let problem = evaluator.problem;
    let mut gradient = Vec::with_capacity(theta.len());
    let mut gradient_se = Vec::with_capacity(theta.len());
    let mut objective = vec![0.0; replications.len()];
    for i in 0..theta.len() {
        let mut direction = vec![0.0; theta.len()];
        direction[i] = 1.0;
        problem.center_groups(&mut direction);
        let (quotients, high, low) = directional(evaluator, theta, &direction, c, replications)?;
        let (g, se) = mean_se(&quotients);
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

/// `spsa` for a problem with `--budget` groups: the ±1 signs `r`, centred within
/// each group (`Δ = P·r`, so `E[ΔΔᵀ] = P`, the projection onto the constraint),
/// one pair of runs along `Δ`, and `ĝ = Δ·q` with `q` the directional quotient:
/// an estimate of the projected gradient `P·∇M` (Spall's `q/Δ_i` for a free value,
/// as `1/Δ_i = Δ_i` there).
pub fn spsa_constrained(
    evaluator: &Evaluator,
    theta: &[f64],
    c: f64,
    signs: &[f64],
    replications: &[u32],
) -> Result<GradientEstimate, ScenarioError> {
    let mut direction = signs.to_vec();
    evaluator.problem.center_groups(&mut direction);
    let (quotients, high, low) = directional(evaluator, theta, &direction, c, replications)?;
    let (gradient, gradient_se) = direction
        .iter()
        .map(|&d| {
            let samples: Vec<f64> = quotients.iter().map(|q| q * d).collect();
            mean_se(&samples)
        })
        .unzip();
    Ok(GradientEstimate {
        gradient,
        gradient_se,
        objective: high.iter().zip(&low).map(|(h, l)| (h + l) / 2.0).collect(),
    })
}

/// `lr`: the score function taken user by user. Per replication,
/// `∂M/∂V ≈ Σ_k ∂M/∂X_k · Σ_u x_{u,k}·s_u + ∂M/∂V|direct`, where `X_k = Σ_u x_{u,k}`
/// are the additive counts the metric is made of and `s_u` is user `u`'s own score
/// up to the event counted (see [`metric_derivative`]). Unbiased for a metric
/// that is a sum of users' contributions when users do not interact (no word of
/// mouth); README, "The lr estimator", has the derivation and the bias otherwise.
pub fn likelihood_ratio_per_user(
    evaluator: &Evaluator,
    theta: &[f64],
    replications: &[u32],
) -> Result<GradientEstimate, ScenarioError> {
    let (results, scenario) = evaluator.scored_outcomes_at(theta, replications)?;
    let direct = direct_derivative(&scenario, evaluator.objective);
    let samples: Vec<f64> = results
        .iter()
        .map(|(outcome, weighted)| {
            metric_derivative(outcome, weighted, evaluator.objective)
                .expect("the objective was checked to be differentiable")
                + direct
        })
        .collect();
    let objective = results
        .iter()
        .map(|(outcome, _)| evaluator.metric_of(outcome))
        .collect();
    let (g, se) = mean_se(&samples);
    Ok(GradientEstimate {
        gradient: vec![g],
        gradient_se: vec![se],
        objective,
    })
}

/// Whether [`metric_derivative`] differentiates metric `name`: every metric
/// that is a function of the outcome's additive counts, which is all of them
/// but `npv` (a discounted sum of daily series the per-user score does not
/// track by day) and `seeded` (set by the seeding plan, not by a draw `V` enters).
pub fn is_differentiable(name: &str) -> bool {
    crate::metrics::METRIC_NAMES.contains(&name) && name != "npv" && name != "seeded"
}

/// The derivative of metric `name` along the tangent `weighted` of its additive
/// counts (the chain rule `Σ_k ∂M/∂X_k · dX_k`), or `None` for a metric the
/// per-user score cannot differentiate. Exact for sums; for ratios and products
/// of sums (`conversion_rate`, `satisfaction`, `seed_r`, `funnel`) the chain rule
/// at the replication's own counts, which is consistent (its bias is of order 1/N).
pub fn metric_derivative(outcome: &Outcome, weighted: &ScoreWeighted, name: &str) -> Option<f64> {
    let n = f64::from(outcome.population);
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    // d(a/b) for counts a, b with tangents da, db (0 where b = 0, as the metric).
    let ratio = |a: f64, da: f64, b: f64, db: f64| {
        if b > 0.0 {
            (da * b - a * db) / (b * b)
        } else {
            0.0
        }
    };
    let registrations = outcome.registrations as f64;
    let conversions = outcome.conversions() as f64;
    let d_conversions = sum(&weighted.conversions);
    let d_conversion_rate = ratio(
        conversions,
        d_conversions,
        registrations,
        weighted.registrations,
    );
    let d_satisfaction = ratio(
        outcome.satisfaction_sum,
        weighted.satisfaction_sum,
        outcome.active_payers as f64,
        weighted.active_payers,
    );
    Some(match name {
        "exposures" => sum(&weighted.exposures),
        "clicks" => sum(&weighted.clicks),
        "registrations" => weighted.registrations,
        "conversions" => d_conversions,
        "renewals" => sum(&weighted.renewals),
        "churned" => weighted.churned,
        "dormant" => weighted.dormant,
        "aware" => weighted.aware,
        "active_payers" => weighted.active_payers,
        "revenue" | "profit" => weighted.revenue,
        "spend" => 0.0,
        "acquisition_rate" => weighted.registrations / n,
        "conversion_rate" => d_conversion_rate,
        "awareness" => weighted.aware / n,
        "satisfaction" => d_satisfaction,
        "seed_r" => {
            // seed_r = Σ_i w_i / Σ_i c_i over items with clicks, with
            // c_i = conversions_i/clicks_i and w_i = c_i·r_i = conversions_i/exposures_i.
            let (mut w, mut dw, mut c, mut dc) = (0.0, 0.0, 0.0, 0.0);
            for (i, item) in outcome.items.iter().enumerate() {
                if item.clicks == 0 {
                    continue;
                }
                let (exposures, clicks, conversions) = (
                    item.exposures as f64,
                    item.clicks as f64,
                    item.conversions as f64,
                );
                w += conversions / exposures;
                dw += ratio(
                    conversions,
                    weighted.conversions[i],
                    exposures,
                    weighted.exposures[i],
                );
                c += conversions / clicks;
                dc += ratio(
                    conversions,
                    weighted.conversions[i],
                    clicks,
                    weighted.clicks[i],
                );
            }
            ratio(w, dw, c, dc)
        }
        "funnel" => {
            let metrics = outcome.metrics();
            let value = |m: &str| metrics.get(m).unwrap_or(0.0);
            let factors = [
                (value("acquisition_rate"), weighted.registrations / n),
                (value("conversion_rate"), d_conversion_rate),
                (value("satisfaction"), d_satisfaction),
                (value("awareness"), weighted.aware / n),
            ];
            (0..4)
                .map(|k| {
                    factors
                        .iter()
                        .enumerate()
                        .map(|(j, &(x, dx))| if j == k { dx } else { x })
                        .product::<f64>()
                })
                .sum()
        }
        _ => return None,
    })
}

/// Per-replication samples of `∂E[M]/∂θ_i` for every tuned value `i` at `theta`
/// (the fresh check at the answer): by the score function for `lr` and `lr-whole`,
/// else by coordinate differences `e_i` (one-sided at a bound), which give each
/// value's own marginal return even inside a `--budget` group.
pub fn gradient_samples(
    evaluator: &Evaluator,
    estimator: crate::scenario::Estimator,
    theta: &[f64],
    c: f64,
    replications: &[u32],
) -> Result<Vec<Vec<f64>>, ScenarioError> {
    use crate::scenario::Estimator;
    match estimator {
        Estimator::LikelihoodRatio | Estimator::LikelihoodRatioWhole => {
            let (results, scenario) = evaluator.scored_outcomes_at(theta, replications)?;
            let direct = direct_derivative(&scenario, evaluator.objective);
            let metric: Vec<f64> = results
                .iter()
                .map(|(o, _)| evaluator.metric_of(o))
                .collect();
            let samples = if estimator == Estimator::LikelihoodRatio {
                results
                    .iter()
                    .map(|(outcome, weighted)| {
                        metric_derivative(outcome, weighted, evaluator.objective)
                            .unwrap_or(f64::NAN)
                            + direct
                    })
                    .collect()
            } else {
                let scores: Vec<f64> = results.iter().map(|(o, _)| score_of(o)).collect();
                whole_objective_samples(&metric, &scores, direct)
            };
            Ok(vec![samples])
        }
        Estimator::FiniteDifference | Estimator::Spsa => (0..theta.len())
            .map(|i| {
                let mut direction = vec![0.0; theta.len()];
                direction[i] = 1.0;
                Ok(directional(evaluator, theta, &direction, c, replications)?.0)
            })
            .collect(),
    }
}

/// The score of an outcome simulated with it (`simulate_scored`,
/// `simulate_with_scores`).
fn score_of(outcome: &Outcome) -> f64 {
    outcome
        .score
        .expect("lr and lr-whole simulate their replications with the score")
}

/// Per replication `(M_j − b_j)·score_j + direct` with the leave-one-out baseline
/// `b_j` (the mean of `M` over the other replications).
fn whole_objective_samples(metric: &[f64], scores: &[f64], direct: f64) -> Vec<f64> {
    let total: f64 = metric.iter().sum();
    let others = (metric.len() - 1).max(1) as f64;
    metric
        .iter()
        .zip(scores)
        .map(|(&m, &score)| {
            let baseline = (total - m) / others;
            (m - baseline) * score + direct
        })
        .collect()
}

/// `lr-whole`: the score-function estimator of `∂E[M]/∂V`, per replication
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
    let (outcomes, scenario) = evaluator.outcomes_with_score_at(theta, replications)?;
    let metric: Vec<f64> = outcomes.iter().map(|o| evaluator.metric_of(o)).collect();
    let direct = direct_derivative(&scenario, evaluator.objective);
    let scores: Vec<f64> = outcomes.iter().map(score_of).collect();
    let samples = whole_objective_samples(&metric, &scores, direct);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::METRIC_NAMES;
    use crate::outcome::ItemCounts;

    /// An outcome of two items with large counts, moved by `sign` times the
    /// integer tangent `t` (so the counts stay integers).
    fn moved(t: &ScoreWeighted, sign: i64) -> Outcome {
        // Any outcome, with the fields the metrics read set below (so this stays
        // right when the outcome gains fields).
        let mut scenario =
            crate::scenario::parse_str(include_str!("../../scenarios/bass.toml"), "bass.toml")
                .expect("the bundled scenario is valid");
        scenario.market.population = 10;
        scenario.simulation.days = 1;
        let mut outcome = crate::engine::simulate(&Arc::new(scenario), 0);
        let shift = |x: u64, dx: f64| (x as i64 + sign * dx as i64) as u64;
        let base = [
            (400_000_000, 90_000_000, 20_000_000, 5_000_000),
            (300_000_000, 30_000_000, 9_000_000, 1_000_000),
        ];
        let items = base
            .iter()
            .enumerate()
            .map(|(i, &(e, c, v, r))| ItemCounts {
                exposures: shift(e, t.exposures[i]),
                clicks: shift(c, t.clicks[i]),
                conversions: shift(v, t.conversions[i]),
                renewals: shift(r, t.renewals[i]),
            })
            .collect();
        outcome.population = 1_000_000_000;
        outcome.items = items;
        outcome.registrations = shift(100_000_000, t.registrations);
        outcome.churned = shift(3_000_000, t.churned);
        outcome.dormant = shift(40_000_000, t.dormant);
        outcome.aware = shift(500_000_000, t.aware);
        outcome.active_payers = shift(25_000_000, t.active_payers);
        outcome.satisfaction_sum = 15_000_000.0 + sign as f64 * t.satisfaction_sum;
        outcome.revenue = 3.0e9 + sign as f64 * t.revenue;
        outcome.spend = 1.0e6;
        outcome
    }

    /// The chain rule of every metric matches the central difference of
    /// `Outcome::metrics` along the same tangent (exact to second order; the
    /// counts are large so the step of one tangent is small).
    #[test]
    fn metric_derivatives_match_central_differences_of_the_metrics() {
        let tangent = ScoreWeighted {
            exposures: vec![7000.0, -3000.0],
            clicks: vec![2500.0, 1200.0],
            conversions: vec![-800.0, 900.0],
            renewals: vec![300.0, -100.0],
            registrations: 4000.0,
            churned: -200.0,
            dormant: 1500.0,
            aware: 6000.0,
            active_payers: 700.0,
            satisfaction_sum: 350.0,
            revenue: 12_345.0,
        };
        let (high, low) = (moved(&tangent, 1).metrics(), moved(&tangent, -1).metrics());
        let at = moved(&ScoreWeighted::new(2), 0);
        for (i, name) in METRIC_NAMES.iter().enumerate() {
            let Some(derivative) = metric_derivative(&at, &tangent, name) else {
                assert!(!is_differentiable(name), "{name}");
                continue;
            };
            assert!(is_differentiable(name), "{name}");
            let numeric = (high.0[i] - low.0[i]) / 2.0;
            let scale = derivative.abs().max(numeric.abs()).max(1e-300);
            assert!(
                (derivative - numeric).abs() <= 1e-5 * scale + 1e-15,
                "{name}: chain rule {derivative} vs difference {numeric}"
            );
        }
    }
}
