//! The outer loop of `brandsim optimize` (MODEL.md, "The outer loop"): stochastic
//! gradient steps `θ ← Π(θ + a_k·(ĝ − λ·θ))` that maximise
//! `J(θ) = E[M(θ)] − (λ/2)·|θ|²` over tuned scenario values (the brand value `V` by
//! default), projected onto bounds and `--budget` constraints, with a
//! Polyak–Ruppert average as the answer, its standard error and a verdict on
//! convergence; adaptive effort, a budget of user-days, and resumption from the
//! steps already done.
//!
//! Must not depend on: the CLI or files (`commands::optimize` writes the outputs).

pub mod budget;
pub mod convergence;
pub mod estimators;
pub mod plot;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::rng::{Event, ReplicationKey};
use crate::scenario::{
    Assignment, Estimator, OptimizeSettings, Scenario, ScenarioError, ScenarioSource,
};
use crate::stats::{Summary, summarize};
use budget::BudgetGroup;
use convergence::{GradientAtAnswer, Settling, Stop, Verdict};
use estimators::{Evaluator, GradientEstimate};

/// The key path tuned when no `--param` is given.
pub const BRAND_VALUE: &str = "brand.value";

/// Why an optimisation cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    #[error("--param {text:?}: {message}")]
    BadParameter { text: String, message: String },
    #[error("--budget {text:?}: {message}")]
    BadBudget { text: String, message: String },
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
    /// Where the search starts: the scenario's values, projected onto the
    /// `--budget` constraints.
    pub start: Vec<f64>,
    /// The `--budget` groups: tuned values that sum to a total.
    pub budgets: Vec<BudgetGroup>,
}

impl Problem {
    /// Checks every tuned key by applying it to the scenario: it must name a number
    /// (not an integer, a name or a table) that the scenario holds, inside its bounds.
    /// No parameters means `brand.value`, unbounded.
    pub fn new(
        source: ScenarioSource,
        parameters: Vec<TunedParameter>,
    ) -> Result<Problem, OptimizeError> {
        Problem::with_budgets(source, parameters, Vec::new())
    }

    /// [`Problem::new`] with `--budget` groups `(keys, total)`: a key not given by
    /// `--param` is tuned with the bounds `[0, ∞)`, one given by `--param` without
    /// a lower bound gets 0; the start is projected onto each group's constraint.
    /// A key in two groups, or a total out of reach of the bounds, is refused.
    pub fn with_budgets(
        source: ScenarioSource,
        parameters: Vec<TunedParameter>,
        budgets: Vec<(Vec<String>, f64)>,
    ) -> Result<Problem, OptimizeError> {
        let mut parameters = if parameters.is_empty() && budgets.is_empty() {
            vec![TunedParameter::unbounded(BRAND_VALUE)]
        } else {
            parameters
        };
        let mut groups = Vec::with_capacity(budgets.len());
        for (keys, total) in &budgets {
            let text = format!("{}={total}", keys.join(","));
            let error = |message: String| OptimizeError::BadBudget {
                text: text.clone(),
                message,
            };
            let mut indices = Vec::with_capacity(keys.len());
            for key in keys {
                if groups
                    .iter()
                    .any(|g: &BudgetGroup| g.keys.iter().any(|k| k == key))
                {
                    return Err(error(format!("{key} is in another --budget group too")));
                }
                let index = match parameters.iter().position(|p| &p.key == key) {
                    Some(index) => index,
                    None => {
                        parameters.push(TunedParameter {
                            key: key.clone(),
                            lower: 0.0,
                            upper: f64::INFINITY,
                        });
                        parameters.len() - 1
                    }
                };
                let parameter = &mut parameters[index];
                if parameter.lower == f64::NEG_INFINITY {
                    parameter.lower = 0.0;
                }
                indices.push(index);
            }
            let lowest: f64 = indices.iter().map(|&i| parameters[i].lower).sum();
            let highest: f64 = indices.iter().map(|&i| parameters[i].upper).sum();
            if !(lowest <= *total && *total <= highest) {
                return Err(error(format!(
                    "the total {total} is out of reach: the keys' bounds allow totals in [{lowest}, {highest}]"
                )));
            }
            groups.push(BudgetGroup {
                keys: keys.clone(),
                indices,
                total: *total,
            });
        }
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
            // A campaign's first or last day or a seeding's day (a day number or a
            // date) is tuned as a real number of days, rounded to the nearest day when
            // it is applied.
            let value = match day_of(&source, &parameter.key) {
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
            let in_group = groups.iter().any(|g| g.keys.contains(&parameter.key));
            if !in_group && parameter.project(value) != value {
                return Err(error(format!(
                    "the search starts at the scenario's value {value}, outside the bounds [{}, {}]",
                    parameter.lower, parameter.upper
                )));
            }
            start.push(value);
        }
        let base = Arc::new(source.with_overrides(&[])?.0);
        let mut problem = Problem {
            source,
            base,
            parameters,
            start,
            budgets: groups,
        };
        let mut start = problem.start.clone();
        problem.project(&mut start);
        problem.start = start;
        Ok(problem)
    }

    /// The group of tuned value `i`, if it is in a `--budget` group.
    pub fn group_of(&self, i: usize) -> Option<&BudgetGroup> {
        self.budgets.iter().find(|g| g.indices.contains(&i))
    }

    /// Subtracts, within each `--budget` group, the group's mean from `direction`,
    /// making it zero-sum there (the projection onto the constraint's directions).
    pub fn center_groups(&self, direction: &mut [f64]) {
        for group in &self.budgets {
            let mean = group.indices.iter().map(|&i| direction[i]).sum::<f64>()
                / group.indices.len() as f64;
            for &i in &group.indices {
                direction[i] -= mean;
            }
        }
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

    /// Projects `theta` onto the feasible set: each `--budget` group onto its
    /// bounded simplex (Euclidean projection), every other value onto its bounds.
    pub fn project(&self, theta: &mut [f64]) {
        for (i, (x, parameter)) in theta.iter_mut().zip(&self.parameters).enumerate() {
            if self.group_of(i).is_none() {
                *x = parameter.project(*x);
            }
        }
        for group in &self.budgets {
            let mut values: Vec<f64> = group.indices.iter().map(|&i| theta[i]).collect();
            let lower: Vec<f64> = group
                .indices
                .iter()
                .map(|&i| self.parameters[i].lower)
                .collect();
            let upper: Vec<f64> = group
                .indices
                .iter()
                .map(|&i| self.parameters[i].upper)
                .collect();
            budget::project_onto_simplex(&mut values, &lower, &upper, group.total);
            for (&i, v) in group.indices.iter().zip(values) {
                theta[i] = v;
            }
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
    /// ĝ, an estimate of ∂E[M]/∂θ_i (projected onto a `--budget` group's
    /// constraint for its values), and its standard error over replications.
    pub gradient: Vec<f64>,
    pub gradient_se: Vec<f64>,
    /// The step size `a_k`.
    pub gain: f64,
    /// The perturbation `c_k` (none for `lr`).
    pub perturbation: Option<f64>,
    /// Replications of the step (each estimate averages this many).
    pub replications: u32,
}

/// How far to trust an answer: its standard error, how the iterates settled, the
/// gradient at the answer from a fresh estimate, and the verdict.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// Iterates averaged into the answer.
    pub window: usize,
    /// Per tuned value.
    pub settling: Vec<Settling>,
    /// Per tuned value, at the answer; empty if the search stopped before it
    /// could be estimated.
    pub gradient: Vec<GradientAtAnswer>,
    /// Replications of the fresh gradient estimate: those of the confirmation
    /// study, or of the last step if it had more (the first ones are shared).
    pub gradient_replications: u32,
    pub verdict: Verdict,
    pub stop: Stop,
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
    /// The first replication index of the confirmation study (after the steps').
    pub confirmation_first: u64,
    /// `(λ/2)·|θ̄|²` at `parameters`.
    pub penalty: f64,
    pub diagnostics: Diagnostics,
    /// Replications simulated in all (steps, confirmation and gradient check),
    /// including steps done by an earlier, interrupted process.
    pub simulations: u64,
    /// Simulated user-days in all: `simulations · N · T`.
    pub user_days: f64,
    pub seconds: f64,
}

/// How a search ended: with an answer, or interrupted after some steps.
#[derive(Debug, Clone)]
pub enum Outcome {
    Finished(Box<Optimum>),
    /// Stopped by the caller's flag (Ctrl-C) after these steps.
    Interrupted(Vec<Step>),
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
        Estimator::FiniteDifference
        | Estimator::LikelihoodRatio
        | Estimator::LikelihoodRatioWhole => (eta, c),
    }
}

fn is_score_function(estimator: Estimator) -> bool {
    matches!(
        estimator,
        Estimator::LikelihoodRatio | Estimator::LikelihoodRatioWhole
    )
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

/// The replication indices `first .. first + count`: each step's are fresh and
/// shared by the step's ± runs; the confirmation study uses the indices after
/// the last step's.
fn replications(first: u64, count: u32) -> Result<Vec<u32>, OptimizeError> {
    let last = first + u64::from(count);
    if last > u64::from(u32::MAX) {
        return Err(OptimizeError::Unsupported(format!(
            "the search needs replication indices up to {last}; at most {} fit",
            u32::MAX
        )));
    }
    Ok((first as u32..last as u32).collect())
}

/// Whether `key` takes whole numbers: a campaign's `start` or `end` or a
/// seeding's `day` (days), or a seeding's `users`. Such keys are tuned as real
/// numbers and rounded to the nearest whole number when applied.
fn is_whole_number_key(key: &str) -> bool {
    (key.starts_with("campaigns.") && (key.ends_with(".start") || key.ends_with(".end")))
        || (key.starts_with("seeding.") && (key.ends_with(".day") || key.ends_with(".users")))
}

/// The day number of `campaigns.<name>.start` or `.end`, or of `seeding.<name>.day`,
/// in the scenario (a date becomes its day), or `None` for any other key.
fn day_of(source: &ScenarioSource, key: &str) -> Option<i64> {
    let (table, rest) = key.split_once('.')?;
    let (name, field) = rest.rsplit_once('.')?;
    let day = match (table, field) {
        ("campaigns", "start" | "end") => {
            let scenario = source.with_overrides(&[]).ok()?.0;
            let campaign = scenario
                .calendar
                .campaigns
                .iter()
                .find(|c| c.name == name)?;
            if field == "start" {
                campaign.start
            } else {
                campaign.end
            }
        }
        ("seeding", "day") => {
            let scenario = source.with_overrides(&[]).ok()?.0;
            scenario.seeding.iter().find(|s| s.name == name)?.day
        }
        _ => return None,
    };
    Some(i64::from(day))
}

/// The value that sets tuned key `key` to `value`: a whole number for the keys of
/// [`is_whole_number_key`], else the number itself.
fn tuned_value(key: &str, value: f64) -> toml::Value {
    if is_whole_number_key(key) && value.is_finite() {
        toml::Value::Integer(value.round() as i64)
    } else {
        toml::Value::Float(value)
    }
}

/// Runs per replication of one step: `2d` for `fd`, 2 for `spsa`, 1 for `lr`.
pub fn runs_per_replication(estimator: Estimator, dimensions: usize) -> u64 {
    match estimator {
        Estimator::FiniteDifference => 2 * dimensions as u64,
        Estimator::Spsa => 2,
        Estimator::LikelihoodRatio | Estimator::LikelihoodRatioWhole => 1,
    }
}

/// Runs the search: `settings.iterations` gradient steps from `problem.start`, then
/// a confirmation study of `confirmation_replications` at the averaged answer and
/// a fresh gradient estimate there. Calls `on_step` after each step. Deterministic
/// given the scenario's seed, whatever the number of threads in `pool`.
pub fn optimize(
    problem: &Problem,
    settings: &OptimizeSettings,
    confirmation_replications: u32,
    pool: &rayon::ThreadPool,
    on_step: &dyn Fn(&Step),
) -> Result<Optimum, OptimizeError> {
    let outcome = search(
        problem,
        settings,
        confirmation_replications,
        pool,
        &Control {
            on_step: &|steps: &[Step]| on_step(steps.last().expect("a step was done")),
            stop: &AtomicBool::new(false),
            done: Vec::new(),
        },
    )?;
    match outcome {
        Outcome::Finished(optimum) => Ok(*optimum),
        Outcome::Interrupted(_) => unreachable!("nothing sets the stop flag"),
    }
}

/// What the caller of [`search`] controls: a callback after each step (with all
/// steps so far), a flag that stops the search between steps, and the steps an
/// earlier process did (to resume).
pub struct Control<'a> {
    pub on_step: &'a dyn Fn(&[Step]),
    pub stop: &'a AtomicBool,
    pub done: Vec<Step>,
}

/// Where a search stands after some steps: the next iterate, the iterates so
/// far, the replications of the next step and the next replication index.
struct State {
    theta: Vec<f64>,
    iterates: Vec<Vec<f64>>,
    next_replications: u32,
    next_index: u64,
    /// Per-replication gradient variances of the last few steps (newest last).
    recent_variances: Vec<Vec<f64>>,
}

/// Steps whose per-replication gradient variance is pooled for the norm test: a
/// step of 2 replications alone estimates it too poorly (its standard error can
/// come out as 0).
const POOLED_STEPS: usize = 5;

impl State {
    fn new(problem: &Problem, settings: &OptimizeSettings) -> State {
        State {
            theta: problem.start.clone(),
            iterates: Vec::new(),
            next_replications: settings.replications_per_step,
            next_index: 0,
            recent_variances: Vec::new(),
        }
    }

    /// The standard errors of `step`'s gradient with the per-replication variance
    /// pooled over the last [`POOLED_STEPS`] steps (this one included).
    fn pooled_se(&mut self, step: &Step) -> Vec<f64> {
        let r = f64::from(step.replications);
        self.recent_variances
            .push(step.gradient_se.iter().map(|se| se * se * r).collect());
        if self.recent_variances.len() > POOLED_STEPS {
            self.recent_variances.remove(0);
        }
        (0..step.gradient_se.len())
            .map(|i| {
                let pooled = self.recent_variances.iter().map(|v| v[i]).sum::<f64>()
                    / self.recent_variances.len() as f64;
                (pooled / r).sqrt()
            })
            .collect()
    }

    /// Moves past `step`: `θ ← Π(θ + a_k·(ĝ − λ·θ))`, and (adaptive effort) the
    /// norm test sizes the next step.
    fn advance(&mut self, problem: &Problem, settings: &OptimizeSettings, step: &Step) {
        let gradient_j = gradient_of_j(problem, settings, step);
        for (x, g) in self.theta.iter_mut().zip(&step.gradient) {
            *x += step.gain * (g - settings.regularization * *x);
        }
        problem.project(&mut self.theta);
        self.iterates.push(self.theta.clone());
        self.next_index += u64::from(step.replications);
        if settings.adaptive {
            let tolerances: Vec<f64> = step
                .parameters
                .iter()
                .map(|x| settings.tolerance * x.abs().max(1.0))
                .collect();
            self.next_replications = convergence::norm_test(
                step.replications,
                &self.pooled_se(step),
                &gradient_j,
                convergence::noise_floor(&tolerances, step.gain),
            );
        }
    }
}

/// `∇J = ĝ − λ·θ_k` of a step, made zero-sum within each `--budget` group.
fn gradient_of_j(problem: &Problem, settings: &OptimizeSettings, step: &Step) -> Vec<f64> {
    let mut gradient: Vec<f64> = step
        .gradient
        .iter()
        .zip(&step.parameters)
        .map(|(g, x)| g - settings.regularization * x)
        .collect();
    problem.center_groups(&mut gradient);
    gradient
}

/// Checks that the search can run: the `lr` estimators tune `brand.value` only,
/// `lr-whole` needs two replications per step, and `lr` a metric it can
/// differentiate user by user.
pub fn check_search(problem: &Problem, settings: &OptimizeSettings) -> Result<(), OptimizeError> {
    if !is_score_function(settings.estimator) {
        return Ok(());
    }
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
    if settings.estimator == Estimator::LikelihoodRatioWhole && settings.replications_per_step < 2 {
        return Err(OptimizeError::Unsupported(
            "the lr-whole estimator needs replications_per_step >= 2 for its leave-one-out baseline"
                .to_string(),
        ));
    }
    if settings.estimator == Estimator::LikelihoodRatio
        && !estimators::is_differentiable(&settings.objective)
    {
        return Err(OptimizeError::Unsupported(format!(
            "the lr estimator cannot take objective {:?} user by user; use --estimator lr-whole, fd or spsa",
            settings.objective
        )));
    }
    Ok(())
}

/// Runs or resumes a search (see [`optimize`]) under `control`: the steps in
/// `control.done` are replayed, not simulated again, so a resumed search gives
/// the answer of an uninterrupted one. With adaptive effort the search stops
/// once it has converged; with a budget of user-days, once it is spent.
pub fn search(
    problem: &Problem,
    settings: &OptimizeSettings,
    confirmation_replications: u32,
    pool: &rayon::ThreadPool,
    control: &Control,
) -> Result<Outcome, OptimizeError> {
    let started = Instant::now();
    check_search(problem, settings)?;
    let evaluator = Evaluator::new(problem, &settings.objective, pool)?;
    let dimensions = problem.parameters.len();
    let seed = problem.base.simulation.seed;
    let user_days_per_run =
        f64::from(problem.base.market.population) * f64::from(problem.base.simulation.days);
    let runs = runs_per_replication(settings.estimator, dimensions);

    let mut state = State::new(problem, settings);
    let mut steps: Vec<Step> = Vec::with_capacity(settings.iterations as usize);
    let mut replayed_simulations = 0u64;
    for (k, step) in control.done.iter().enumerate() {
        if step.step as usize != k
            || step.parameters != state.theta
            || step.parameters.len() != dimensions
        {
            return Err(OptimizeError::Unsupported(format!(
                "the stored step {k} does not continue this search (its values differ from the replayed ones)"
            )));
        }
        state.advance(problem, settings, step);
        replayed_simulations += runs * u64::from(step.replications);
        steps.push(step.clone());
    }
    let spent = |evaluator: &Evaluator| {
        (replayed_simulations + evaluator.simulations()) as f64 * user_days_per_run
    };

    let mut stop = Stop::Iterations;
    for k in steps.len() as u32..settings.iterations {
        if settings.adaptive && has_converged(problem, settings, &steps, &state.iterates) {
            stop = Stop::Converged;
            break;
        }
        if settings
            .budget_user_days
            .is_some_and(|budget| spent(&evaluator) >= budget)
        {
            stop = Stop::Budget;
            break;
        }
        if control.stop.load(Ordering::SeqCst) {
            return Ok(Outcome::Interrupted(steps));
        }
        let per_step = state.next_replications;
        let step_replications = replications(state.next_index, per_step)?;
        let (gain, c) = gains(settings, k);
        let out_of_domain = |error| OptimizeError::OutOfDomain { step: k, error };
        let theta = &state.theta;
        let constrained = !problem.budgets.is_empty();
        let GradientEstimate {
            gradient,
            gradient_se,
            objective,
        } = match settings.estimator {
            Estimator::FiniteDifference if constrained => {
                estimators::finite_difference_constrained(&evaluator, theta, c, &step_replications)
            }
            Estimator::FiniteDifference => estimators::finite_difference(
                &evaluator,
                theta,
                c,
                &step_replications,
                &step_replications,
            ),
            Estimator::Spsa if constrained => estimators::spsa_constrained(
                &evaluator,
                theta,
                c,
                &spsa_signs(seed, k, dimensions),
                &step_replications,
            ),
            Estimator::Spsa => estimators::spsa(
                &evaluator,
                theta,
                c,
                &spsa_signs(seed, k, dimensions),
                &step_replications,
            ),
            Estimator::LikelihoodRatio => {
                estimators::likelihood_ratio_per_user(&evaluator, theta, &step_replications)
            }
            Estimator::LikelihoodRatioWhole => {
                estimators::likelihood_ratio(&evaluator, theta, &step_replications)
            }
        }
        .map_err(out_of_domain)?;
        let step = Step {
            step: k,
            parameters: theta.clone(),
            objective: summarize(&objective),
            penalty: problem.penalty(settings, theta),
            gradient,
            gradient_se,
            gain,
            perturbation: (!is_score_function(settings.estimator)).then_some(c),
            replications: per_step,
        };
        state.advance(problem, settings, &step);
        steps.push(step);
        (control.on_step)(&steps);
    }

    let parameters = polyak_ruppert_average(&state.iterates).unwrap_or_else(|| state.theta.clone());
    let confirmation_first = state.next_index;
    let confirmation_list = replications(confirmation_first, confirmation_replications)?;
    let at_answer = |error| OptimizeError::OutOfDomain {
        step: steps.len() as u32,
        error,
    };
    let confirmation = evaluator
        .metric_at(&parameters, &confirmation_list)
        .map_err(at_answer)?;
    let (_, c_last) = gains(settings, steps.len().saturating_sub(1) as u32);
    // At least as many replications as the last step had: what the search found
    // it needed for a gradient worth following.
    let last_step = steps.last().map_or(0, |s| s.replications);
    let gradient_replications = confirmation_replications.max(last_step);
    let check_list = replications(confirmation_first, gradient_replications)?;
    let samples = estimators::gradient_samples(
        &evaluator,
        settings.estimator,
        &parameters,
        c_last,
        &check_list,
    )
    .map_err(at_answer)?;
    let gradient = gradient_at_answer(problem, settings, &parameters, &samples);
    let window = window_of(&state.iterates);
    let settling = settling_of(window, dimensions);
    let keys: Vec<String> = problem.parameters.iter().map(|p| p.key.clone()).collect();
    let smallest_step = steps.iter().map(|s| s.replications).min().unwrap_or(0);
    let verdict = convergence::judge(
        &keys,
        window.len(),
        &settling,
        Some(&gradient),
        &parameters,
        settings.tolerance,
        smallest_step,
    );
    let simulations = replayed_simulations + evaluator.simulations();
    Ok(Outcome::Finished(Box::new(Optimum {
        steps,
        penalty: problem.penalty(settings, &parameters),
        parameters,
        last_iterate: state.theta,
        confirmation: summarize(&confirmation),
        confirmation_replications,
        confirmation_first,
        diagnostics: Diagnostics {
            window: window.len(),
            settling,
            gradient,
            gradient_replications,
            verdict,
            stop,
        },
        simulations,
        user_days: simulations as f64 * user_days_per_run,
        seconds: started.elapsed().as_secs_f64(),
    })))
}

/// The iterates averaged into the answer: the second half.
fn window_of(iterates: &[Vec<f64>]) -> &[Vec<f64>] {
    &iterates[iterates.len() / 2..]
}

/// How each tuned value settled over `window`.
fn settling_of(window: &[Vec<f64>], dimensions: usize) -> Vec<Settling> {
    (0..dimensions)
        .map(|i| {
            let values: Vec<f64> = window.iter().map(|theta| theta[i]).collect();
            Settling::of(&values)
        })
        .collect()
}

/// Whether an adaptive search may stop before step `steps.len()`: the judge's
/// verdict on the steps so far, with the gradient at the answer taken as the mean
/// of the window's steps' gradients of `J` (the iterates hover around the answer,
/// so to first order that is the gradient there; its standard error is that of a
/// mean of independent estimates).
fn has_converged(
    problem: &Problem,
    settings: &OptimizeSettings,
    steps: &[Step],
    iterates: &[Vec<f64>],
) -> bool {
    let window = window_of(iterates);
    if window.len() < convergence::MIN_WINDOW {
        return false;
    }
    let dimensions = problem.parameters.len();
    let recent = &steps[steps.len() - window.len()..];
    let n = recent.len() as f64;
    let gradients: Vec<Vec<f64>> = recent
        .iter()
        .map(|s| gradient_of_j(problem, settings, s))
        .collect();
    let answer = polyak_ruppert_average(iterates).expect("a window");
    let gradient: Vec<GradientAtAnswer> = (0..dimensions)
        .map(|i| {
            let mean = gradients.iter().map(|g| g[i]).sum::<f64>() / n;
            let se = recent
                .iter()
                .map(|s| s.gradient_se[i] * s.gradient_se[i])
                .sum::<f64>()
                .sqrt()
                / n;
            GradientAtAnswer {
                marginal_return: f64::NAN,
                marginal_return_se: f64::NAN,
                stationarity: mean,
                stationarity_se: se,
                position: position(&problem.parameters[i], answer[i]),
            }
        })
        .collect();
    let keys: Vec<String> = problem.parameters.iter().map(|p| p.key.clone()).collect();
    let smallest_step = recent.iter().map(|s| s.replications).min().unwrap_or(0);
    let settling = settling_of(window, dimensions);
    // Stopping early asks more of the drift than the final verdict does.
    let still = settling
        .iter()
        .all(|s| s.drift.abs() <= convergence::STOP_DRIFT_Z * s.drift_se);
    still
        && convergence::judge(
            &keys,
            window.len(),
            &settling,
            Some(&gradient),
            &answer,
            settings.tolerance,
            smallest_step,
        )
        .converged
}

/// Where `x` lies against the bounds of `parameter`.
fn position(parameter: &TunedParameter, x: f64) -> &'static str {
    let scale = 1e-9 * x.abs().max(1.0);
    if x <= parameter.lower + scale {
        "lower bound"
    } else if x >= parameter.upper - scale {
        "upper bound"
    } else {
        "inside"
    }
}

/// The gradient of `J` at the answer per tuned value from per-replication
/// samples of `∂E[M]/∂θ_i` (`samples[i][j]`, all on the same replications): the
/// marginal return with its standard error and the stationarity component,
/// which for a value of a `--budget` group is its `∂J/∂θ_i` minus the group's
/// mean over the values not at a bound (per replication, so common random
/// numbers cut the noise of the difference).
fn gradient_at_answer(
    problem: &Problem,
    settings: &OptimizeSettings,
    answer: &[f64],
    samples: &[Vec<f64>],
) -> Vec<GradientAtAnswer> {
    let lambda = settings.regularization;
    let positions: Vec<&'static str> = problem
        .parameters
        .iter()
        .zip(answer)
        .map(|(p, &x)| position(p, x))
        .collect();
    // ∂J/∂θ_i per replication.
    let of_j: Vec<Vec<f64>> = samples
        .iter()
        .zip(answer)
        .map(|(s, &x)| s.iter().map(|g| g - lambda * x).collect())
        .collect();
    let mut stationarity = of_j.clone();
    for group in &problem.budgets {
        let inside: Vec<usize> = group
            .indices
            .iter()
            .copied()
            .filter(|&i| positions[i] == "inside")
            .collect();
        let reference = if inside.is_empty() {
            group.indices.clone()
        } else {
            inside
        };
        let replications = samples[group.indices[0]].len();
        let means: Vec<f64> = (0..replications)
            .map(|j| reference.iter().map(|&i| of_j[i][j]).sum::<f64>() / reference.len() as f64)
            .collect();
        for &i in &group.indices {
            for (x, m) in stationarity[i].iter_mut().zip(&means) {
                *x -= m;
            }
        }
    }
    (0..samples.len())
        .map(|i| {
            let (marginal_return, marginal_return_se) = mean_se(&samples[i]);
            let (stationarity, stationarity_se) = mean_se(&stationarity[i]);
            GradientAtAnswer {
                marginal_return,
                marginal_return_se,
                stationarity,
                stationarity_se,
                position: positions[i],
            }
        })
        .collect()
}

/// Mean and standard error of independent samples.
fn mean_se(samples: &[f64]) -> (f64, f64) {
    let (mean, sd) = crate::stats::mean_sd(samples);
    (mean, sd / (samples.len() as f64).sqrt())
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
