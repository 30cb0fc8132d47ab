//! The outer loop of `brandsim optimize` (MODEL.md, "The outer loop"): stochastic
//! gradient steps `θ ← Π(θ + a_k·(ĝ − λ·θ))` that maximise
//! `J(θ) = E[M(θ)] − (λ/2)·|θ|²` over tuned scenario values (the brand value `V` by
//! default), projected onto bounds, with a Polyak–Ruppert average as the answer.
//!
//! Must not depend on: the CLI or files (`commands::optimize` writes the outputs).

pub mod estimators;
pub mod plot;

use std::sync::Arc;
use std::time::Instant;

use crate::rng::{Event, ReplicationKey};
use crate::scenario::{
    Assignment, Estimator, OptimizeSettings, Scenario, ScenarioError, ScenarioSource,
};
use crate::stats::{Summary, summarize};
use estimators::{Evaluator, GradientEstimate};

/// The key path tuned when no `--param` is given.
pub const BRAND_VALUE: &str = "brand.value";

/// Why an optimisation cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    #[error("--param {text:?}: {message}")]
    BadParameter { text: String, message: String },
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "step {step}: the scenario rejects the point the search reached ({error}); bound the parameter with --param KEY=LO:HI"
    )]
    OutOfDomain { step: u32, error: ScenarioError },
}

/// One tuned scenario value: its key path (as `--set` names it) and its bounds
/// (infinite when not given).
#[derive(Debug, Clone, PartialEq)]
pub struct TunedParameter {
    pub key: String,
    pub lower: f64,
    pub upper: f64,
}

impl TunedParameter {
    pub fn unbounded(key: &str) -> Self {
        TunedParameter {
            key: key.to_string(),
            lower: f64::NEG_INFINITY,
            upper: f64::INFINITY,
        }
    }

    /// The nearest value inside the bounds.
    pub fn project(&self, x: f64) -> f64 {
        x.clamp(self.lower, self.upper)
    }
}

/// Parses `--param KEY` or `--param KEY=LO:HI` (either bound may be left empty:
/// `brand.value=0:` is `V >= 0`).
pub fn parse_parameter(text: &str) -> Result<TunedParameter, OptimizeError> {
    let error = |message: String| OptimizeError::BadParameter {
        text: text.to_string(),
        message,
    };
    let Some((key, bounds)) = text.rsplit_once('=') else {
        let key = text.trim();
        if key.is_empty() {
            return Err(error("expected KEY or KEY=LO:HI".to_string()));
        }
        return Ok(TunedParameter::unbounded(key));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(error("expected a key path before '='".to_string()));
    }
    let Some((lower, upper)) = bounds.split_once(':') else {
        return Err(error(format!(
            "expected bounds LO:HI after '=', found {bounds:?}"
        )));
    };
    let bound = |text: &str, missing: f64| -> Result<f64, OptimizeError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(missing);
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(error(format!(
                "expected a finite number or nothing as a bound, found {text:?}"
            ))),
        }
    };
    let lower = bound(lower, f64::NEG_INFINITY)?;
    let upper = bound(upper, f64::INFINITY)?;
    if lower >= upper {
        return Err(error(format!(
            "expected LO < HI, found {lower} and {upper}"
        )));
    }
    Ok(TunedParameter {
        key: key.to_string(),
        lower,
        upper,
    })
}

/// What is tuned: a resolved scenario, the tuned key paths with bounds, and the
/// scenario's values of them (where the search starts).
#[derive(Debug, Clone)]
pub struct Problem {
    source: ScenarioSource,
    pub base: Arc<Scenario>,
    pub parameters: Vec<TunedParameter>,
    pub start: Vec<f64>,
}

impl Problem {
    /// Checks every tuned key by applying it to the scenario: it must name a number
    /// (not an integer, a name or a table) that the scenario holds, inside its bounds.
    /// No parameters means `brand.value`, unbounded.
    pub fn new(
        source: ScenarioSource,
        parameters: Vec<TunedParameter>,
    ) -> Result<Problem, OptimizeError> {
        let parameters = if parameters.is_empty() {
            vec![TunedParameter::unbounded(BRAND_VALUE)]
        } else {
            parameters
        };
        let mut start = Vec::with_capacity(parameters.len());
        for (i, parameter) in parameters.iter().enumerate() {
            let error = |message: String| OptimizeError::BadParameter {
                text: parameter.key.clone(),
                message,
            };
            if parameters[..i].iter().any(|p| p.key == parameter.key) {
                return Err(error("given twice".to_string()));
            }
            let value = source
                .value_at(&parameter.key)
                .map_err(|e| error(e.to_string()))?;
            // A campaign's first or last day (a day number or a date) is tuned as a
            // real number of days, rounded to the nearest day when it is applied.
            let value = match campaign_day(&source, &parameter.key) {
                Some(day) => Some(toml::Value::Integer(day)),
                None => value,
            };
            let value = match value {
                Some(toml::Value::Float(x)) => x,
                Some(toml::Value::Integer(i)) => i as f64,
                Some(other) => {
                    return Err(error(format!(
                        "holds {} {}, not a number; only number keys can be tuned",
                        article(other.type_str()),
                        other.type_str()
                    )));
                }
                None => {
                    return Err(error(format!(
                        "{} leaves this optional key out, so there is no value to start from; \
                         write it in the file or give it with --set {}=VALUE",
                        source.file, parameter.key
                    )));
                }
            };
            let probe = Assignment {
                key: parameter.key.clone(),
                value: tuned_value(&parameter.key, value),
            };
            source.with_overrides(&[probe]).map_err(|e| {
                error(format!(
                    "cannot be tuned: only keys that take a real number can ({e})"
                ))
            })?;
            if parameter.project(value) != value {
                return Err(error(format!(
                    "the search starts at the scenario's value {value}, outside the bounds [{}, {}]",
                    parameter.lower, parameter.upper
                )));
            }
            start.push(value);
        }
        let base = Arc::new(source.with_overrides(&[])?.0);
        Ok(Problem {
            source,
            base,
            parameters,
            start,
        })
    }

    /// The assignments that set the tuned values to `theta`.
    fn assignments_at(&self, theta: &[f64]) -> Vec<Assignment> {
        self.parameters
            .iter()
            .zip(theta)
            .map(|(parameter, &value)| Assignment {
                key: parameter.key.clone(),
                value: tuned_value(&parameter.key, value),
            })
            .collect()
    }

    /// The scenario with the tuned values set to `theta`.
    pub fn scenario_at(&self, theta: &[f64]) -> Result<Arc<Scenario>, ScenarioError> {
        Ok(Arc::new(
            self.source.with_overrides(&self.assignments_at(theta))?.0,
        ))
    }

    /// The resolved scenario document with the tuned values set to `theta`.
    pub fn source_at(&self, theta: &[f64]) -> Result<ScenarioSource, ScenarioError> {
        Ok(self.source.with_overrides(&self.assignments_at(theta))?.1)
    }

    /// The penalty `(λ/2)·|θ|²` of the objective `J`.
    pub fn penalty(&self, settings: &OptimizeSettings, theta: &[f64]) -> f64 {
        0.5 * settings.regularization * theta.iter().map(|x| x * x).sum::<f64>()
    }

    /// Projects `theta` onto the bounds.
    pub fn project(&self, theta: &mut [f64]) {
        for (x, parameter) in theta.iter_mut().zip(&self.parameters) {
            *x = parameter.project(*x);
        }
    }
}

fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// One gradient step, as reported in `trace.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// k, from 0.
    pub step: u32,
    /// θ_k, where the gradient was estimated.
    pub parameters: Vec<f64>,
    /// The objective metric `M` over the step's replications (at θ_k for `lr`; the
    /// mean of the ± runs for `fd` and `spsa`, which is `M(θ_k)` to O(c²)).
    pub objective: Summary,
    /// `(λ/2)·|θ_k|²`: `J = M − penalty`.
    pub penalty: f64,
    /// ĝ, an estimate of ∂E[M]/∂θ_i, and its standard error over replications.
    pub gradient: Vec<f64>,
    pub gradient_se: Vec<f64>,
    /// The step size `a_k`.
    pub gain: f64,
    /// The perturbation `c_k` (none for `lr`).
    pub perturbation: Option<f64>,
}

/// The answer of a search.
#[derive(Debug, Clone)]
pub struct Optimum {
    pub steps: Vec<Step>,
    /// The Polyak–Ruppert average of the iterates of the second half of the search.
    pub parameters: Vec<f64>,
    /// The last iterate θ_K.
    pub last_iterate: Vec<f64>,
    /// `M` at `parameters` from a confirmation study on fresh replications.
    pub confirmation: Summary,
    pub confirmation_replications: u32,
    /// `(λ/2)·|θ̄|²` at `parameters`.
    pub penalty: f64,
    /// Replications simulated in all (steps and confirmation).
    pub simulations: u64,
    /// Simulated user-days in all: `simulations · N · T`.
    pub user_days: f64,
    pub seconds: f64,
}

/// Step size `a_k` and perturbation `c_k` of step `k`: constant `η` and `c` for
/// `fd` and `lr` (the seed's update); Spall's gains `a_k = η/(k+1+A)^0.602`,
/// `c_k = c/(k+1)^0.101` with `A = 10%` of the iterations for `spsa`.
pub fn gains(settings: &OptimizeSettings, k: u32) -> (f64, f64) {
    let (eta, c) = (settings.learning_rate, settings.perturbation);
    match settings.estimator {
        Estimator::Spsa => {
            let stability = 0.1 * f64::from(settings.iterations);
            let k = f64::from(k);
            (
                eta / (k + 1.0 + stability).powf(0.602),
                c / (k + 1.0).powf(0.101),
            )
        }
        Estimator::FiniteDifference | Estimator::LikelihoodRatio => (eta, c),
    }
}

/// SPSA's perturbation direction of step `k`: a ±1 per tuned parameter, keyed by
/// `(seed, k, parameter)` like every other draw.
pub fn spsa_signs(seed: u64, k: u32, dimensions: usize) -> Vec<f64> {
    let stream = ReplicationKey::new(seed, k).stream(0, Event::Perturbation);
    (0..dimensions)
        .map(|i| {
            if stream.bernoulli(i as u32, 0.5) {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// The replication indices of step `k`: `k·R .. (k+1)·R`, fresh at every step and
/// shared by the step's ± runs. The confirmation study uses the indices after the
/// last step's.
fn replications(first: u64, count: u32) -> Result<Vec<u32>, OptimizeError> {
    let last = first + u64::from(count);
    if last > u64::from(u32::MAX) {
        return Err(OptimizeError::Unsupported(format!(
            "iterations x replications_per_step + replications = {last} replications; at most {} fit",
            u32::MAX
        )));
    }
    Ok((first as u32..last as u32).collect())
}

/// Whether `key` is a campaign's `start` or `end`: a day, tuned in whole days.
fn is_campaign_day(key: &str) -> bool {
    key.starts_with("campaigns.") && (key.ends_with(".start") || key.ends_with(".end"))
}

/// The day number of `campaigns.<name>.start` or `.end` in the scenario (a date
/// becomes its day), or `None` for any other key.
fn campaign_day(source: &ScenarioSource, key: &str) -> Option<i64> {
    if !is_campaign_day(key) {
        return None;
    }
    let (name_and, field) = key["campaigns.".len()..].rsplit_once('.')?;
    let scenario = source.with_overrides(&[]).ok()?.0;
    let campaign = scenario
        .calendar
        .campaigns
        .iter()
        .find(|c| c.name == name_and)?;
    Some(i64::from(if field == "start" {
        campaign.start
    } else {
        campaign.end
    }))
}

/// The value that sets tuned key `key` to `value`: a whole day for a campaign's
/// `start` or `end`, else the number itself.
fn tuned_value(key: &str, value: f64) -> toml::Value {
    if is_campaign_day(key) && value.is_finite() {
        toml::Value::Integer(value.round() as i64)
    } else {
        toml::Value::Float(value)
    }
}

/// Runs the search: `settings.iterations` gradient steps from `problem.start`, then
/// a confirmation study of `confirmation_replications` at the averaged answer.
/// Calls `on_step` after each step. Deterministic given the scenario's seed,
/// whatever the number of threads in `pool`.
pub fn optimize(
    problem: &Problem,
    settings: &OptimizeSettings,
    confirmation_replications: u32,
    pool: &rayon::ThreadPool,
    on_step: &dyn Fn(&Step),
) -> Result<Optimum, OptimizeError> {
    let started = Instant::now();
    if settings.estimator == Estimator::LikelihoodRatio {
        if let Some(other) = problem.parameters.iter().find(|p| p.key != BRAND_VALUE) {
            return Err(OptimizeError::Unsupported(format!(
                "--param {}: the lr estimator tunes only {BRAND_VALUE} (the engine's score is \
                 ∂log P/∂V); use --estimator fd or spsa to tune other values",
                other.key
            )));
        }
        let calendar = &problem.base.calendar;
        let sets_brand_value = calendar
            .campaigns
            .iter()
            .flat_map(|c| &c.set)
            .chain(calendar.schedule.iter().flat_map(|row| &row.set))
            .any(|(key, _)| *key == crate::scenario::TimeVaryingKey::BrandValue);
        if sets_brand_value {
            return Err(OptimizeError::Unsupported(
                "the lr estimator needs brand.value to be the tuned value on every day, but a \
                 campaign or the schedule sets it on some days; use --estimator fd or spsa"
                    .to_string(),
            ));
        }
        if settings.replications_per_step < 2 {
            return Err(OptimizeError::Unsupported(
                "the lr estimator needs replications_per_step >= 2 for its leave-one-out baseline"
                    .to_string(),
            ));
        }
    }
    let evaluator = Evaluator::new(problem, &settings.objective, pool)?;
    let per_step = settings.replications_per_step;
    let seed = problem.base.simulation.seed;
    let mut theta = problem.start.clone();
    let mut iterates = Vec::with_capacity(settings.iterations as usize);
    let mut steps = Vec::with_capacity(settings.iterations as usize);
    for k in 0..settings.iterations {
        let step_replications = replications(u64::from(k) * u64::from(per_step), per_step)?;
        let (gain, c) = gains(settings, k);
        let out_of_domain = |error| OptimizeError::OutOfDomain { step: k, error };
        let GradientEstimate {
            gradient,
            gradient_se,
            objective,
        } = match settings.estimator {
            Estimator::FiniteDifference => estimators::finite_difference(
                &evaluator,
                &theta,
                c,
                &step_replications,
                &step_replications,
            ),
            Estimator::Spsa => estimators::spsa(
                &evaluator,
                &theta,
                c,
                &spsa_signs(seed, k, theta.len()),
                &step_replications,
            ),
            Estimator::LikelihoodRatio => {
                estimators::likelihood_ratio(&evaluator, &theta, &step_replications)
            }
        }
        .map_err(out_of_domain)?;
        let step = Step {
            step: k,
            parameters: theta.clone(),
            objective: summarize(&objective),
            penalty: problem.penalty(settings, &theta),
            gradient,
            gradient_se,
            gain,
            perturbation: (settings.estimator != Estimator::LikelihoodRatio).then_some(c),
        };
        for (x, g) in theta.iter_mut().zip(&step.gradient) {
            *x += gain * (g - settings.regularization * *x);
        }
        problem.project(&mut theta);
        iterates.push(theta.clone());
        on_step(&step);
        steps.push(step);
    }
    let parameters = polyak_ruppert_average(&iterates).unwrap_or_else(|| theta.clone());
    let confirmation_replications_list = replications(
        u64::from(settings.iterations) * u64::from(per_step),
        confirmation_replications,
    )?;
    let confirmation = evaluator
        .metric_at(&parameters, &confirmation_replications_list)
        .map_err(|error| OptimizeError::OutOfDomain {
            step: settings.iterations,
            error,
        })?;
    let simulations = evaluator.simulations();
    Ok(Optimum {
        steps,
        penalty: problem.penalty(settings, &parameters),
        parameters,
        last_iterate: theta,
        confirmation: summarize(&confirmation),
        confirmation_replications,
        simulations,
        user_days: simulations as f64
            * f64::from(problem.base.market.population)
            * f64::from(problem.base.simulation.days),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The mean of the second half of the iterates (Polyak–Ruppert averaging after a
/// burn-in of half the search); inside the bounds, as the bounds are a box.
pub fn polyak_ruppert_average(iterates: &[Vec<f64>]) -> Option<Vec<f64>> {
    let tail = &iterates[iterates.len() / 2..];
    let first = tail.first()?;
    let mut mean = vec![0.0; first.len()];
    for iterate in tail {
        for (m, x) in mean.iter_mut().zip(iterate) {
            *m += x / tail.len() as f64;
        }
    }
    Some(mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_bounds_parse_with_either_side_open() {
        let p = parse_parameter("brand.value").unwrap();
        assert_eq!((p.lower, p.upper), (f64::NEG_INFINITY, f64::INFINITY));
        let p = parse_parameter("channels.kol.daily_budget=0:5000").unwrap();
        assert_eq!(p.key, "channels.kol.daily_budget");
        assert_eq!((p.lower, p.upper), (0.0, 5000.0));
        let p = parse_parameter("brand.value=-1:").unwrap();
        assert_eq!((p.lower, p.upper), (-1.0, f64::INFINITY));
        for bad in [
            "",
            "brand.value=3",
            "brand.value=2:1",
            "brand.value=a:1",
            "=0:1",
        ] {
            assert!(parse_parameter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spsa_gains_follow_spall() {
        let settings = OptimizeSettings {
            iterations: 50,
            learning_rate: 2.0,
            perturbation: 0.1,
            ..OptimizeSettings::default()
        };
        let (a, c) = gains(&settings, 3);
        assert!((a - 2.0 / (4.0f64 + 5.0).powf(0.602)).abs() < 1e-12);
        assert!((c - 0.1 / 4.0f64.powf(0.101)).abs() < 1e-12);
        let fd = OptimizeSettings {
            estimator: Estimator::FiniteDifference,
            ..settings
        };
        assert_eq!(gains(&fd, 3), (2.0, 0.1));
    }

    #[test]
    fn spsa_signs_are_plus_or_minus_one_and_keyed_by_step() {
        let a = spsa_signs(7, 3, 64);
        assert!(a.iter().all(|&s| s == 1.0 || s == -1.0));
        assert_eq!(a, spsa_signs(7, 3, 64));
        assert_ne!(a, spsa_signs(7, 4, 64));
        let plus = a.iter().filter(|&&s| s > 0.0).count();
        assert!((16..=48).contains(&plus), "{plus} of 64");
    }

    #[test]
    fn polyak_ruppert_averages_the_second_half() {
        let iterates = vec![vec![10.0], vec![0.0], vec![1.0], vec![3.0]];
        assert_eq!(polyak_ruppert_average(&iterates), Some(vec![2.0]));
        assert_eq!(polyak_ruppert_average(&[]), None);
    }
}
