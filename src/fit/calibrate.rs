//! Calibration of scenario values to observed daily series by the method of
//! simulated moments: D. McFadden (1989), "A method of simulated moments for
//! estimation of discrete response models without numerical integration",
//! Econometrica 57(5), 995–1026; A. Pakes and D. Pollard (1989), "Simulation and
//! the asymptotics of optimization estimators", Econometrica 57(5), 1027–1057.
//!
//! The observed cells `y_c` (a series on a day) are matched by the mean `μ_c(θ)` of
//! `R` replications simulated at `θ` on common random numbers (replications
//! `0..R−1` of the scenario's seed, so `μ(θ)` moves smoothly with `θ`), minimising
//! `Q(θ) = Σ_c w_c·(y_c − μ_c(θ))²` with `w_c = 1/v_c`, `v_c` the simulated
//! variance of one replication's cell at the weighting point (floored per series),
//! taken on the `R_p ≥ R` precision replications (`--se-replications`).
//! Two stages: weights at the scenario's values, Nelder–Mead from several starts;
//! then weights at that answer and one more search from it.
//!
//! Standard errors: the simulated-moments sandwich
//! `V = (1 + 1/R)·A⁻¹·B·A⁻¹` with `A = GᵀWG`, `B = GᵀWΩWG`, `G = ∂μ/∂θ` by central
//! differences on common random numbers at the answer, and `Ω` the covariance of one
//! replication's cells, estimated there (`B` as the sample covariance of
//! `GᵀW(x_j − x̄)`), both on the `R_p` precision replications. The factor `1 + 1/R`
//! counts the simulation noise of the `R`-replication mean `μ` that the search
//! fitted, on top of the data's own.
//!
//! Must not depend on: the CLI or files (`commands::calibrate` writes the outputs
//! and the journal of evaluations).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use super::data::Table;
use super::{DataError, correlations, inverse_spd, nelder_mead};
use crate::metrics::SERIES_NAMES;
use crate::optimize::{Problem, TunedParameter};
use crate::outcome::Outcome;
use crate::rng::{Event, ReplicationKey};
use crate::study::run_replications_until;

/// Correlations of two fitted values beyond this (in absolute value) are reported
/// as not identifiable from the observed series.
pub const IDENTIFIABILITY_THRESHOLD: f64 = 0.95;

/// One observed daily series: its name (one of `SERIES_NAMES`) and `(day, value)`
/// for the days it has a value.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSeries {
    pub name: &'static str,
    pub cells: Vec<(usize, f64)>,
}

/// The observed series of a calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub file: String,
    pub series: Vec<ObservedSeries>,
    /// The columns named by time-varying key paths (the spend per channel, ...):
    /// what the market was exposed to, day by day, which become the calibrated
    /// scenario's schedule.
    pub schedule: Option<ObservedSchedule>,
}

/// The key-path columns of the observed data, as schedule rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSchedule {
    /// The header of the data file, column by column (to name a bad cell).
    pub header: Vec<String>,
    /// The key paths, in column order.
    pub keys: Vec<String>,
    /// One row per day that sets at least one key: its line in the file, the
    /// day, and `(key path, value)` of each non-empty cell.
    pub rows: Vec<ScheduleCells>,
}

/// One day's row of an [`ObservedSchedule`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleCells {
    pub line: u64,
    pub day: u32,
    pub set: Vec<(String, f64)>,
}

impl Observed {
    /// The observed values, cell by cell (series by series, days in file order).
    pub fn values(&self) -> Vec<f64> {
        self.series
            .iter()
            .flat_map(|s| s.cells.iter().map(|c| c.1))
            .collect()
    }

    /// Number of observed cells.
    pub fn len(&self) -> usize {
        self.series.iter().map(|s| s.cells.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cells of one replication's outcome, in the order of [`Observed::values`].
    pub fn cells_of(&self, outcome: &Outcome) -> Vec<f64> {
        self.series
            .iter()
            .flat_map(|s| {
                s.cells
                    .iter()
                    .map(|&(day, _)| outcome.daily.value(s.name, day))
            })
            .collect()
    }
}

/// Reads the observed data: a `day` column (days `0..days−1`, each once), or a
/// `date` column (`YYYY-MM-DD`, with `start_date` the scenario's
/// `simulation.start_date`); any of the daily series of MODEL.md by name, empty
/// cells missing; and any columns named by key path (`channels.ads.daily_budget`):
/// the values the market saw, which become the scenario's schedule (the keys and
/// values are checked with the scenario).
pub fn read_observed(
    table: &Table,
    days: u32,
    start_date: Option<NaiveDate>,
) -> Result<Observed, DataError> {
    let dated = match table.headers[0].as_str() {
        "day" => false,
        "date" if start_date.is_some() => true,
        "date" => {
            return Err(table.file_error(
                Some(1),
                "column 1 \"date\": dates need the scenario's simulation.start_date; \
                 give the start date, or number the days from 0 in a \"day\" column"
                    .into(),
            ));
        }
        other => {
            return Err(table.file_error(
                Some(1),
                format!(
                    "column 1 is {other:?}; expected \"day\" (or \"date\"), then observed daily series"
                ),
            ));
        }
    };
    // Per column after the first: the index of its series, or None for a key path.
    let mut columns: Vec<Option<usize>> = Vec::new();
    let mut series = Vec::new();
    let mut keys = Vec::new();
    for (column, name) in table.headers.iter().enumerate().skip(1) {
        if name.contains('.') {
            keys.push(name.clone());
            columns.push(None);
            continue;
        }
        let Some(&known) = SERIES_NAMES.iter().find(|&&s| s == name) else {
            return Err(table.file_error(
                Some(1),
                format!(
                    "column {} {name:?} is no daily series; expected one of: {} \
                     (or a time-varying key path such as channels.<c>.daily_budget)",
                    column + 1,
                    SERIES_NAMES.join(", ")
                ),
            ));
        };
        columns.push(Some(series.len()));
        series.push(ObservedSeries {
            name: known,
            cells: Vec::new(),
        });
    }
    if series.is_empty() {
        return Err(table.file_error(
            Some(1),
            format!(
                "no observed series; expected \"day\", then any of: {}",
                SERIES_NAMES.join(", ")
            ),
        ));
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<u64, u64> = HashMap::new();
    for row in &table.rows {
        let day = if dated {
            let text = row.cells[0].as_str();
            let date = crate::scenario::calendar::parse_date(text).ok_or_else(|| {
                table.error(
                    row.line,
                    0,
                    format!("expected a date YYYY-MM-DD, found {text:?}"),
                )
            })?;
            let start = start_date.expect("dated only with a start date");
            let day = (date - start).num_days();
            if day < 0 {
                return Err(table.error(
                    row.line,
                    0,
                    format!("the date {date} is before simulation.start_date = {start}"),
                ));
            }
            day as u64
        } else {
            table.index(row, 0, "a day")?
        };
        if day >= u64::from(days) {
            return Err(table.error(
                row.line,
                0,
                format!(
                    "{} is outside the horizon: days run 0..{} (simulation.days = {days})",
                    if dated {
                        format!("the date {} (day {day})", row.cells[0])
                    } else {
                        format!("day {day}")
                    },
                    days - 1
                ),
            ));
        }
        if let Some(first) = seen.insert(day, row.line) {
            return Err(table.error(
                row.line,
                0,
                format!("day {day} again (first on line {first}); each day once"),
            ));
        }
        let mut set = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            let Some(value) = table.number(row, i + 1)? else {
                continue;
            };
            match column {
                Some(s) => {
                    let s = &mut series[*s];
                    if value < 0.0 {
                        return Err(table.error(
                            row.line,
                            i + 1,
                            format!("expected a non-negative value of {}, found {value}", s.name),
                        ));
                    }
                    s.cells.push((day as usize, value));
                }
                None => set.push((table.headers[i + 1].clone(), value)),
            }
        }
        if !set.is_empty() {
            rows.push(ScheduleCells {
                line: row.line,
                day: day as u32,
                set,
            });
        }
    }
    series.retain(|s| !s.cells.is_empty());
    if series.is_empty() {
        return Err(table.file_error(None, "no observed value in any cell".into()));
    }
    let schedule = (!keys.is_empty()).then(|| ObservedSchedule {
        header: table.headers.clone(),
        keys,
        rows,
    });
    Ok(Observed {
        file: table.file.clone(),
        series,
        schedule,
    })
}

/// The mean and variance over replications of each observed cell at one `θ`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub mean: Vec<f64>,
    pub variance: Vec<f64>,
}

/// Why an evaluation has no value.
#[derive(Debug, Clone, PartialEq)]
pub enum EvaluationError {
    /// The scenario rejects `θ` (outside a key's range): the objective is `+∞` there.
    OutOfDomain,
    /// Ctrl-C: no new evaluation starts.
    Interrupted,
}

/// How a fitted value is searched: Nelder–Mead runs in unbounded coordinates `z`,
/// `x = lo + (hi − lo)·σ(z)` inside two bounds, `lo + e^z` or `hi − e^z` with one,
/// `x₀ + s·z` with none (`s` the scale of the start).
#[derive(Debug, Clone, PartialEq)]
struct Coordinate {
    parameter: TunedParameter,
    start: f64,
    scale: f64,
}

impl Coordinate {
    fn x(&self, z: f64) -> f64 {
        let (lo, hi) = (self.parameter.lower, self.parameter.upper);
        match (lo.is_finite(), hi.is_finite()) {
            (true, true) => lo + (hi - lo) / (1.0 + (-z).exp()),
            (true, false) => lo + z.exp(),
            (false, true) => hi - z.exp(),
            (false, false) => self.start + self.scale * z,
        }
    }

    fn z(&self, x: f64) -> f64 {
        let (lo, hi) = (self.parameter.lower, self.parameter.upper);
        match (lo.is_finite(), hi.is_finite()) {
            (true, true) => {
                let u = ((x - lo) / (hi - lo)).clamp(0.01, 0.99);
                (u / (1.0 - u)).ln()
            }
            (true, false) => (x - lo).max(1e-3 * self.scale).ln(),
            (false, true) => (hi - x).max(1e-3 * self.scale).ln(),
            (false, false) => (x - self.start) / self.scale,
        }
    }

    /// A start drawn from `u` in (0, 1): uniform inside two bounds, else within
    /// ±2 of the scenario's start in `z`.
    fn z_from_uniform(&self, u: f64) -> f64 {
        let (lo, hi) = (self.parameter.lower, self.parameter.upper);
        if lo.is_finite() && hi.is_finite() {
            let u = 0.05 + 0.9 * u;
            (u / (1.0 - u)).ln()
        } else {
            self.z(self.start) + 4.0 * u - 2.0
        }
    }

    /// The first central-difference step at `x`: 5% of the value, but at least 1%
    /// of the search's scale (a quarter of the bounds' width; without both bounds,
    /// half the start's size, or 1), so that a value at
    /// or near zero is not differentiated on a step far below what the data
    /// resolve; at most a quarter of the width.
    fn step(&self, x: f64) -> f64 {
        let width = self.parameter.upper - self.parameter.lower;
        let base = (0.05 * x.abs()).max(0.01 * self.scale);
        if width.is_finite() {
            base.min(width / 4.0)
        } else {
            base
        }
    }
}

/// A calibration problem: the scenario and its fitted keys (`Problem`), the
/// observed cells, the replications of every evaluation, and a cache of the
/// moments already simulated (preloaded from the journal by `--resume`).
pub struct Calibration<'a> {
    pub problem: &'a Problem,
    pub observed: &'a Observed,
    /// Replications `0..R−1` of every evaluation (common random numbers).
    pub replications: Vec<u32>,
    /// Replications `0..R_p−1` (`R_p ≥ R`) of the nuisance quantities: the weights,
    /// and at the answer the Jacobian, the covariance `Ω` and the bands.
    pub precision_replications: Vec<u32>,
    pool: &'a rayon::ThreadPool,
    stop: &'a AtomicBool,
    coordinates: Vec<Coordinate>,
    cache: Mutex<HashMap<Vec<u64>, Arc<Moments>>>,
    /// Called once for each newly simulated `θ` (the command appends it to the
    /// journal and moves the progress bar).
    on_evaluation: &'a (dyn Fn(&[f64], &Moments) + Sync),
    simulated: AtomicU64,
    cached: AtomicU64,
    interrupted: AtomicBool,
}

/// The settings of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSettings {
    pub starts: u32,
    pub max_iterations: u32,
    pub bootstrap: u32,
}

/// One Nelder–Mead search: where it started and what it found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchRun {
    pub stage: u32,
    pub start: Vec<f64>,
    pub answer: Vec<f64>,
    pub objective: f64,
    pub iterations: u64,
}

/// Goodness of fit of one series at the answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesFit {
    pub series: String,
    pub cells: usize,
    /// `√(mean (y − μ)²)` over the observed cells.
    pub rmse: f64,
    pub observed_mean: f64,
}

/// A pair of fitted values that the series cannot tell apart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unidentified {
    pub keys: [String; 2],
    pub correlation: f64,
}

/// The result of a calibration.
#[derive(Debug, Clone)]
pub struct CalibrationResult {
    pub estimate: Vec<f64>,
    /// Sandwich standard errors (NaN when `A` is singular).
    pub se: Vec<f64>,
    pub covariance: DMatrix<f64>,
    pub correlation: DMatrix<f64>,
    pub unidentified: Vec<Unidentified>,
    /// Keys that do not move the simulated series at all at the answer.
    pub inert: Vec<String>,
    /// The objective `Q` at the answer, with the final weights.
    pub objective: f64,
    pub runs: Vec<SearchRun>,
    pub fits: Vec<SeriesFit>,
    /// `bands[series][day] = (mean, p05, p95)` over the `R` replications at the answer.
    pub bands: Vec<Vec<(f64, f64, f64)>>,
    /// Each bootstrap refit (empty without `--bootstrap`).
    pub bootstrap: Vec<Vec<f64>>,
    pub simulated_evaluations: u64,
    pub cached_evaluations: u64,
}

impl<'a> Calibration<'a> {
    /// Sets up a calibration of `problem`'s keys to `observed` with `replications`
    /// replications per evaluation of the objective and `max(replications,
    /// precision_replications)` for the weights and the standard errors; `cache`
    /// holds moments from an earlier run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        problem: &'a Problem,
        observed: &'a Observed,
        replications: u32,
        precision_replications: u32,
        pool: &'a rayon::ThreadPool,
        stop: &'a AtomicBool,
        cache: Vec<(Vec<f64>, Moments)>,
        on_evaluation: &'a (dyn Fn(&[f64], &Moments) + Sync),
    ) -> Self {
        let coordinates = problem
            .parameters
            .iter()
            .zip(&problem.start)
            .map(|(parameter, &start)| {
                let width = parameter.upper - parameter.lower;
                let scale = if width.is_finite() {
                    width / 4.0
                } else if start != 0.0 {
                    start.abs() / 2.0
                } else {
                    1.0
                };
                Coordinate {
                    parameter: parameter.clone(),
                    start,
                    scale,
                }
            })
            .collect();
        Calibration {
            problem,
            observed,
            replications: (0..replications).collect(),
            precision_replications: (0..replications.max(precision_replications)).collect(),
            pool,
            stop,
            coordinates,
            cache: Mutex::new(
                cache
                    .into_iter()
                    .map(|(theta, m)| (bits(&theta), Arc::new(m)))
                    .collect(),
            ),
            on_evaluation,
            simulated: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            interrupted: AtomicBool::new(false),
        }
    }

    /// Evaluations simulated so far (not found in the cache).
    pub fn simulated(&self) -> u64 {
        self.simulated.load(Ordering::Relaxed)
    }

    /// Whether Ctrl-C stopped an evaluation.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// The outcomes of the calibration's replications at `theta`.
    fn outcomes_at(
        &self,
        theta: &[f64],
        replications: &[u32],
    ) -> Result<Vec<Outcome>, EvaluationError> {
        if self.stop.load(Ordering::SeqCst) {
            self.interrupted.store(true, Ordering::SeqCst);
            return Err(EvaluationError::Interrupted);
        }
        let scenario = self
            .problem
            .scenario_at(theta)
            .map_err(|_| EvaluationError::OutOfDomain)?;
        let run = run_replications_until(&scenario, replications, self.pool, self.stop, &|_| {});
        if run.outcomes.len() < replications.len() {
            self.interrupted.store(true, Ordering::SeqCst);
            return Err(EvaluationError::Interrupted);
        }
        Ok(run.outcomes)
    }

    /// The moments of the observed cells at `theta`, from the cache or simulated.
    pub fn moments_at(&self, theta: &[f64]) -> Result<Arc<Moments>, EvaluationError> {
        let key = bits(theta);
        if let Some(m) = self.cache.lock().expect("cache lock").get(&key) {
            self.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(m.clone());
        }
        let outcomes = self.outcomes_at(theta, &self.replications)?;
        let cells: Vec<Vec<f64>> = outcomes.iter().map(|o| self.observed.cells_of(o)).collect();
        let moments = Arc::new(moments(&cells));
        self.simulated.fetch_add(1, Ordering::Relaxed);
        (self.on_evaluation)(theta, &moments);
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, moments.clone());
        Ok(moments)
    }

    /// The observed cells of each of the precision replications at `theta`
    /// (`cells[j][c]`), simulated afresh (not journaled: they are few, and
    /// deterministic in `theta`).
    fn precise_cells(&self, theta: &[f64]) -> Result<Vec<Vec<f64>>, EvaluationError> {
        let outcomes = self.outcomes_at(theta, &self.precision_replications)?;
        Ok(outcomes.iter().map(|o| self.observed.cells_of(o)).collect())
    }

    /// The weights `1/v_c` at `theta` (see [`weights_from_variance`]), with `v_c`
    /// from the precision replications. From only the `R` replications of an
    /// evaluation, `1/v̂_c` would be a noisy weight per cell (with 8 replications,
    /// `v̂_c` is `v_c·χ²₇/7`), correlated with the simulated mean through the same
    /// replications: the objective's shape would then depend on the seed.
    fn weights_at(&self, theta: &[f64]) -> Result<Vec<f64>, EvaluationError> {
        let cells = self.precise_cells(theta)?;
        Ok(weights_from_variance(
            self.observed,
            &moments(&cells).variance,
        ))
    }

    /// `Q(θ) = Σ w_c (y_c − μ_c(θ))²`; `+∞` outside the scenario's domain.
    fn objective(&self, theta: &[f64], data: &[f64], weights: &[f64]) -> f64 {
        match self.moments_at(theta) {
            Ok(m) => data
                .iter()
                .zip(&m.mean)
                .zip(weights)
                .map(|((y, mu), w)| w * (y - mu) * (y - mu))
                .sum(),
            Err(_) => f64::INFINITY,
        }
    }

    fn theta_of(&self, z: &[f64]) -> Vec<f64> {
        self.coordinates
            .iter()
            .zip(z)
            .map(|(c, &z)| c.x(z))
            .collect()
    }

    fn z_of(&self, theta: &[f64]) -> Vec<f64> {
        self.coordinates
            .iter()
            .zip(theta)
            .map(|(c, &x)| c.z(x))
            .collect()
    }

    /// One search from `start` (in `θ`) with fixed weights: Nelder–Mead, restarted
    /// from its answer with a fresh simplex until a restart gains less than 0.1% (at
    /// most 5 rounds). On common random numbers the objective is flat at the finest
    /// scales, where a simplex can collapse before it reaches the minimum; the
    /// restart lets it look again at the scale it started with.
    fn search(
        &self,
        start: &[f64],
        data: &[f64],
        weights: &[f64],
        settings: &SearchSettings,
        stage: u32,
    ) -> SearchRun {
        let f = |z: &[f64]| self.objective(&self.theta_of(z), data, weights);
        let mut z = self.z_of(start);
        let steps = vec![0.5; z.len()];
        // Stop when the simplex's values agree to 1e-6 of a cell's weighted square.
        let tolerance = 1e-6 * data.len() as f64;
        let mut value = f(&z);
        let mut iterations = 0;
        for _ in 0..5 {
            let found = nelder_mead(
                &f,
                &z,
                &steps,
                tolerance,
                u64::from(settings.max_iterations),
            );
            iterations += found.iterations;
            let gain = value - found.value;
            if found.value < value {
                z = found.x;
                value = found.value;
            }
            if gain.is_nan() || gain <= 1e-3 * value.abs() || self.interrupted() {
                break;
            }
        }
        SearchRun {
            stage,
            start: start.to_vec(),
            answer: self.theta_of(&z),
            objective: value,
            iterations,
        }
    }

    /// The starts of stage 1: the scenario's values, then `starts − 1` points drawn
    /// from streams keyed by the seed and the start's number.
    fn starts(&self, count: u32) -> Vec<Vec<f64>> {
        let seed = self.problem.base.simulation.seed;
        let mut starts = vec![self.problem.start.clone()];
        for k in 1..count {
            let stream = ReplicationKey::new(seed, k).stream(0, Event::Perturbation);
            let z: Vec<f64> = self
                .coordinates
                .iter()
                .enumerate()
                .map(|(i, c)| c.z_from_uniform(stream.uniform(i as u32)))
                .collect();
            starts.push(self.theta_of(&z));
        }
        starts
    }

    /// Runs the calibration: two stages of searches, the sandwich at the answer,
    /// the fit per series and the optional parametric bootstrap. Returns `None`
    /// when interrupted (the moments simulated so far went to `on_evaluation`).
    pub fn run(
        &self,
        settings: &SearchSettings,
        on_stage: &dyn Fn(&str),
    ) -> Option<CalibrationResult> {
        let data = self.observed.values();
        let k = self.coordinates.len();
        // Stage 1: weights at the scenario's values, several starts.
        on_stage("stage 1: searching from each start");
        let weights = self.weights_at(&self.problem.start).ok()?;
        let mut runs: Vec<SearchRun> = self
            .starts(settings.starts.max(1))
            .iter()
            .map(|start| self.search(start, &data, &weights, settings, 1))
            .collect();
        if self.interrupted() {
            return None;
        }
        let best = runs
            .iter()
            .min_by(|a, b| a.objective.total_cmp(&b.objective))
            .expect("a start")
            .answer
            .clone();
        // Stage 2: weights at the stage-1 answer, one search from it.
        on_stage("stage 2: reweighting at the answer");
        let weights = self.weights_at(&best).ok()?;
        let second = self.search(&best, &data, &weights, settings, 2);
        if self.interrupted() {
            return None;
        }
        let estimate = if second.objective <= self.objective(&best, &data, &weights) {
            second.answer.clone()
        } else {
            best
        };
        runs.push(second);
        let objective = self.objective(&estimate, &data, &weights);

        // The sandwich at the answer, twice: with steps of 5% of each value, then
        // with steps of one standard error, the scale the data resolve (a smaller
        // step on common random numbers measures the simulation's jumps more than
        // its slope, and a noisy slope makes the standard errors too small). Both on
        // the precision replications: a Jacobian from few replications carries
        // noise in every cell, which inflates `A = GᵀWG` and turns the columns of
        // weakly identified values apart, so their standard errors come out too
        // small (by a factor 2 for word of mouth at 8 replications).
        on_stage("standard errors: Jacobian on common random numbers");
        let outcomes = self
            .outcomes_at(&estimate, &self.precision_replications)
            .ok()?;
        let cells: Vec<Vec<f64>> = outcomes.iter().map(|o| self.observed.cells_of(o)).collect();
        let first_steps: Vec<f64> = (0..k)
            .map(|i| self.coordinates[i].step(estimate[i]))
            .collect();
        let centre = moments(&cells).mean;
        let first = self.sandwich(&estimate, &centre, &first_steps, &weights, &cells)?;
        let steps: Vec<f64> = (0..k)
            .map(|i| {
                let se = first.covariance[(i, i)].sqrt();
                if se.is_finite() && se > 0.0 {
                    let width =
                        self.coordinates[i].parameter.upper - self.coordinates[i].parameter.lower;
                    se.clamp(0.5 * first_steps[i], 20.0 * first_steps[i])
                        .min(width / 4.0)
                } else {
                    first_steps[i]
                }
            })
            .collect();
        let Sandwich {
            covariance,
            correlation,
            unidentified,
            inert,
        } = self.sandwich(&estimate, &centre, &steps, &weights, &cells)?;
        let mean_cells = centre;
        let se = (0..k).map(|i| covariance[(i, i)].sqrt()).collect();

        let mut fits = Vec::new();
        let mut offset = 0;
        for series in &self.observed.series {
            let len = series.cells.len();
            let squares: f64 = (offset..offset + len)
                .map(|c| (data[c] - mean_cells[c]).powi(2))
                .sum();
            fits.push(SeriesFit {
                series: series.name.to_string(),
                cells: len,
                rmse: (squares / len as f64).sqrt(),
                observed_mean: data[offset..offset + len].iter().sum::<f64>() / len as f64,
            });
            offset += len;
        }
        let days = self.problem.base.simulation.days as usize;
        let bands = self
            .observed
            .series
            .iter()
            .map(|s| {
                (0..days)
                    .map(|day| {
                        let mut values: Vec<f64> = outcomes
                            .iter()
                            .map(|o| o.daily.value(s.name, day))
                            .collect();
                        values.sort_by(f64::total_cmp);
                        let mean = values.iter().sum::<f64>() / values.len() as f64;
                        (
                            mean,
                            crate::stats::quantile(&values, 0.05),
                            crate::stats::quantile(&values, 0.95),
                        )
                    })
                    .collect()
            })
            .collect();

        // Parametric bootstrap: data sets are replications R_p, R_p+1, ... at the
        // answer (never used by the evaluations or the weights), each refitted from
        // the answer.
        let mut bootstrap = Vec::new();
        if settings.bootstrap > 0 {
            on_stage("parametric bootstrap");
            let first = self.precision_replications.len() as u32;
            let sets: Vec<u32> = (first..first + settings.bootstrap).collect();
            let data_sets = self.outcomes_at(&estimate, &sets).ok()?;
            for outcome in &data_sets {
                let data_b = self.observed.cells_of(outcome);
                let refit = self.search(&estimate, &data_b, &weights, settings, 3);
                if self.interrupted() {
                    return None;
                }
                bootstrap.push(refit.answer);
            }
        }
        Some(CalibrationResult {
            estimate,
            se,
            covariance,
            correlation,
            unidentified,
            inert,
            objective,
            runs,
            fits,
            bands,
            bootstrap,
            simulated_evaluations: self.simulated.load(Ordering::Relaxed),
            cached_evaluations: self.cached.load(Ordering::Relaxed),
        })
    }

    /// The simulated-moments sandwich at `estimate` with central-difference steps
    /// `steps`, weights `weights`, and the cells of the precision replications
    /// there (`cells`, whose mean is `centre`). The Jacobian is taken on the
    /// precision replications; the simulation factor `1 + 1/R` counts the `R`
    /// replications of the objective, the ones the estimate was fitted with.
    fn sandwich(
        &self,
        estimate: &[f64],
        centre: &[f64],
        steps: &[f64],
        weights: &[f64],
        cells: &[Vec<f64>],
    ) -> Option<Sandwich> {
        let k = estimate.len();
        let n = n_cells(cells);
        let mean_at = |theta: &[f64]| self.precise_cells(theta).map(|c| moments(&c).mean);
        let mut jacobian = DMatrix::zeros(n, k);
        for i in 0..k {
            let c = &self.coordinates[i];
            let h = steps[i];
            let mut plus = estimate.to_vec();
            let mut minus = estimate.to_vec();
            plus[i] = c.parameter.project(estimate[i] + h);
            minus[i] = c.parameter.project(estimate[i] - h);
            let high = mean_at(&plus);
            let low = mean_at(&minus);
            // A step past the scenario's domain: one-sided from the answer.
            let (high, low, plus, minus) = match (high, low) {
                (Ok(h), Ok(l)) => (h, l, plus[i], minus[i]),
                (Ok(h), Err(EvaluationError::OutOfDomain)) => {
                    (h, centre.to_vec(), plus[i], estimate[i])
                }
                (Err(EvaluationError::OutOfDomain), Ok(l)) => {
                    (centre.to_vec(), l, estimate[i], minus[i])
                }
                _ => return None,
            };
            for row in 0..n {
                jacobian[(row, i)] = (high[row] - low[row]) / (plus - minus);
            }
        }
        let SandwichParts { a, b } = sandwich_parts(&jacobian, weights, cells);
        let r = self.replications.len() as f64;
        // Scaled to unit diagonal, `A` is the matrix of cosines between the columns
        // of `G` (in the metric of `W`): a tiny eigenvalue means some combination of
        // the values does not move the simulated series (exactly so when two keys
        // enter only through their sum or product, whose columns are proportional).
        let inert: Vec<String> = (0..k)
            .filter(|&i| a[(i, i)].is_nan() || a[(i, i)] <= 0.0)
            .map(|i| self.coordinates[i].parameter.key.clone())
            .collect();
        let collinearity = correlations(&a);
        let degenerate = !inert.is_empty()
            || collinearity
                .clone()
                .symmetric_eigenvalues()
                .iter()
                .any(|&e| e.is_nan() || e <= 1e-9);
        let covariance = if degenerate {
            None
        } else {
            sandwich_covariance(&SandwichParts { a, b }, r)
        };
        let (covariance, correlation, unidentified) = match covariance {
            Some(covariance) => {
                let correlation = correlations(&covariance);
                let unidentified = self.unidentified(&correlation);
                (covariance, correlation, unidentified)
            }
            None => {
                // For two values, the estimates' correlation is minus the cosine of
                // their columns; it says which pairs the series cannot tell apart.
                let correlation = collinearity.map(|x| -x);
                let unidentified = self.unidentified(&correlation);
                (
                    DMatrix::from_element(k, k, f64::NAN),
                    correlation,
                    unidentified,
                )
            }
        };
        Some(Sandwich {
            covariance,
            correlation,
            unidentified,
            inert,
        })
    }

    fn unidentified(&self, correlation: &DMatrix<f64>) -> Vec<Unidentified> {
        let k = correlation.nrows();
        let mut pairs = Vec::new();
        for i in 0..k {
            for j in 0..i {
                let rho = correlation[(i, j)];
                if rho.abs() > IDENTIFIABILITY_THRESHOLD {
                    pairs.push(Unidentified {
                        keys: [
                            self.coordinates[j].parameter.key.clone(),
                            self.coordinates[i].parameter.key.clone(),
                        ],
                        correlation: rho,
                    });
                }
            }
        }
        pairs
    }
}

/// The two matrices of the simulated-moments sandwich: the bread `A = GᵀWG` and
/// the meat `B = GᵀWΩWG`, `k × k` for `k` fitted values.
#[derive(Debug, Clone, PartialEq)]
pub struct SandwichParts {
    pub a: DMatrix<f64>,
    pub b: DMatrix<f64>,
}

/// `A = GᵀWG` and `B = GᵀWΩ̂WG` from the Jacobian `G` (`n` cells × `k` values,
/// `∂μ_c/∂θ_i`), the diagonal weights `W` (`n`) and the cells of `R_p ≥ 2`
/// replications at the answer (`cells[j][c]`), whose sample covariance (divisor
/// `R_p − 1`) is `Ω̂`; `B` is formed as the sample covariance of the scores
/// `GᵀW(x_j − x̄)`, so `Ω̂` (`n × n`, rank below `R_p`) is never built.
/// McFadden (1989), Pakes and Pollard (1989); docs/MODEL.md, "Calibration".
pub fn sandwich_parts(
    jacobian: &DMatrix<f64>,
    weights: &[f64],
    cells: &[Vec<f64>],
) -> SandwichParts {
    let (n, k) = jacobian.shape();
    let weighted_g = DMatrix::from_fn(n, k, |row, col| jacobian[(row, col)] * weights[row]);
    let a = jacobian.transpose() * &weighted_g;
    let r = cells.len() as f64;
    let mean_cells = moments(cells).mean;
    let mut b = DMatrix::zeros(k, k);
    for x in cells {
        let deviation = DVector::from_fn(n, |c, _| x[c] - mean_cells[c]);
        let score = weighted_g.transpose() * deviation;
        b += &score * score.transpose();
    }
    b /= (r - 1.0).max(1.0);
    SandwichParts { a, b }
}

/// The covariance of simulated-moments estimates `(1 + 1/R)·A⁻¹BA⁻¹`, `R` the
/// replications of each evaluation of the objective (the simulated mean's own
/// noise adds `1/R` of the data's); `None` when `A` is singular.
pub fn sandwich_covariance(parts: &SandwichParts, replications: f64) -> Option<DMatrix<f64>> {
    let a_inverse = inverse_spd(&parts.a)?;
    Some((&a_inverse * &parts.b * &a_inverse) * (1.0 + 1.0 / replications))
}

/// Covariance of the estimates and what it says about identifiability.
struct Sandwich {
    covariance: DMatrix<f64>,
    correlation: DMatrix<f64>,
    unidentified: Vec<Unidentified>,
    inert: Vec<String>,
}

fn n_cells(cells: &[Vec<f64>]) -> usize {
    cells.first().map_or(0, Vec::len)
}

/// The bit patterns of `θ`: the cache key (equal values, equal simulations).
fn bits(theta: &[f64]) -> Vec<u64> {
    theta.iter().map(|x| x.to_bits()).collect()
}

/// Mean and sample variance of each cell over replications: `cells[j][c]`.
pub fn moments(cells: &[Vec<f64>]) -> Moments {
    let n = cells.first().map_or(0, Vec::len);
    let r = cells.len() as f64;
    let mean: Vec<f64> = (0..n)
        .map(|c| cells.iter().map(|x| x[c]).sum::<f64>() / r)
        .collect();
    let variance = (0..n)
        .map(|c| {
            if cells.len() < 2 {
                return 0.0;
            }
            cells.iter().map(|x| (x[c] - mean[c]).powi(2)).sum::<f64>() / (r - 1.0)
        })
        .collect();
    Moments { mean, variance }
}

/// The weights `w_c = 1/max(v_c, floor_s)`: each series' floor is a quarter of its
/// mean simulated variance, so that the first days, whose counts barely vary, do
/// not dominate the objective (where common random numbers make it rough), or 1 if
/// the series has no spread at all.
pub fn weights_from_variance(observed: &Observed, variance: &[f64]) -> Vec<f64> {
    let mut weights = Vec::with_capacity(variance.len());
    let mut offset = 0;
    for series in &observed.series {
        let v = &variance[offset..offset + series.cells.len()];
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let floor = if mean > 0.0 { 0.25 * mean } else { 1.0 };
        weights.extend(v.iter().map(|&x| 1.0 / x.max(floor)));
        offset += series.cells.len();
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinate(lower: f64, upper: f64, start: f64) -> Coordinate {
        Coordinate {
            parameter: TunedParameter {
                key: "k".into(),
                lower,
                upper,
            },
            start,
            scale: 1.0,
        }
    }

    #[test]
    fn coordinates_map_the_real_line_into_the_bounds_and_back() {
        for c in [
            coordinate(0.0, 1.0, 0.3),
            coordinate(0.0, f64::INFINITY, 0.3),
            coordinate(f64::NEG_INFINITY, 2.0, 0.3),
            coordinate(f64::NEG_INFINITY, f64::INFINITY, 0.3),
        ] {
            for x in [0.2, 0.3, 0.7] {
                assert!((c.x(c.z(x)) - x).abs() < 1e-12, "{c:?} {x}");
            }
            for z in [-30.0, 0.0, 30.0] {
                let x = c.x(z);
                assert!(x >= c.parameter.lower && x <= c.parameter.upper);
            }
        }
    }

    #[test]
    fn first_steps_are_five_percent_of_the_value_with_a_floor_near_zero() {
        let mut c = coordinate(0.0, 2.0, 0.3);
        c.scale = 0.5;
        assert_eq!(c.step(0.4), 0.05 * 0.4);
        // Near zero (an estimate at its bound), 1% of the scale, not 5% of 0.001.
        assert_eq!(c.step(0.001), 0.005);
        assert_eq!(c.step(0.0), 0.005);
        assert_eq!(c.step(100.0), 0.5, "at most a quarter of the width");
    }

    #[test]
    fn observed_tables_are_checked_against_series_and_horizon() {
        let read =
            |text: &str| read_observed(&Table::parse(text.as_bytes(), "o.csv").unwrap(), 30, None);
        let observed = read("day,registrations,revenue\n0,5,\n1,,7.5\n2,3,1\n").unwrap();
        assert_eq!(observed.series[0].cells, [(0, 5.0), (2, 3.0)]);
        assert_eq!(observed.values(), [5.0, 3.0, 7.5, 1.0]);
        let cases = [
            (
                "day,registrations\n0,5\n30,6\n",
                "o.csv:3: column 1 (\"day\"): day 30 is outside the horizon: days run 0..29",
            ),
            (
                "day,registrations\n0,5\n1,x\n",
                "o.csv:3: column 2 (\"registrations\"): expected a number, found \"x\"",
            ),
            (
                "day,signups\n0,5\n",
                "o.csv:1: column 2 \"signups\" is no daily series; expected one of: exposures",
            ),
            ("day,channels.ads.daily_budget\n0,5\n", "no observed series"),
            (
                "date,registrations\n2026-01-01,5\n",
                "dates need the scenario's simulation.start_date",
            ),
            (
                "day,registrations\n0,5\n0,6\n",
                "o.csv:3: column 1 (\"day\"): day 0 again (first on line 2)",
            ),
            (
                "day,registrations\n-1,5\n",
                "expected a day (an integer >= 0)",
            ),
            ("day,registrations\n0,-5\n", "expected a non-negative value"),
            ("day,registrations\n0,\n", "no observed value"),
        ];
        for (text, expected) in cases {
            let error = read(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn key_path_columns_become_schedule_rows_and_dates_count_from_the_start() {
        let table = Table::parse(
            b"date,registrations,channels.ads.daily_budget\n2026-01-02,5,40\n2026-01-01,,\n2026-01-03,7,50\n",
            "o.csv",
        )
        .unwrap();
        let start = NaiveDate::from_ymd_opt(2026, 1, 1);
        let observed = read_observed(&table, 30, start).unwrap();
        assert_eq!(observed.series[0].cells, [(1, 5.0), (2, 7.0)]);
        let schedule = observed.schedule.unwrap();
        assert_eq!(schedule.keys, ["channels.ads.daily_budget"]);
        let rows: Vec<(u64, u32, f64)> = schedule
            .rows
            .iter()
            .map(|r| (r.line, r.day, r.set[0].1))
            .collect();
        assert_eq!(rows, [(2, 1, 40.0), (4, 2, 50.0)]);
        let late = Table::parse(b"date,registrations\n2026-02-01,5\n", "o.csv").unwrap();
        let error = read_observed(&late, 30, start).unwrap_err().to_string();
        assert!(
            error.contains("the date 2026-02-01 (day 31) is outside the horizon"),
            "{error}"
        );
    }

    /// `A = XᵀWX`, `B = XᵀWΩ̂WX` with `Ω̂` built explicitly from the cells, and the
    /// covariance `(1 + 1/R)·A⁻¹BA⁻¹`, written out for a small linear model.
    #[test]
    fn sandwich_parts_match_the_closed_form_of_a_linear_model() {
        let x = DMatrix::from_row_slice(4, 2, &[1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 0.5, 3.0]);
        let weights = [1.0, 0.5, 0.25, 2.0];
        let cells = vec![
            vec![1.0, 2.0, 3.5, 0.0],
            vec![0.0, 2.5, 2.0, 1.0],
            vec![2.0, 1.0, 3.0, -1.0],
        ];
        let mean = moments(&cells).mean;
        let omega = DMatrix::from_fn(4, 4, |a, b| {
            cells
                .iter()
                .map(|x| (x[a] - mean[a]) * (x[b] - mean[b]))
                .sum::<f64>()
                / 2.0
        });
        let w = DMatrix::from_diagonal(&DVector::from_column_slice(&weights));
        let a = x.transpose() * &w * &x;
        let b = x.transpose() * &w * &omega * &w * &x;
        let parts = sandwich_parts(&x, &weights, &cells);
        assert!((&parts.a - &a).abs().max() < 1e-12, "{} {a}", parts.a);
        assert!((&parts.b - &b).abs().max() < 1e-12, "{} {b}", parts.b);
        let a_inverse = a.clone().try_inverse().unwrap();
        let expected = &a_inverse * &b * &a_inverse * (1.0 + 1.0 / 8.0);
        let covariance = sandwich_covariance(&parts, 8.0).unwrap();
        assert!(
            (&covariance - &expected).abs().max() < 1e-12,
            "{covariance} {expected}"
        );
        let singular = SandwichParts {
            a: DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, 1.0]),
            b: b.clone(),
        };
        assert!(sandwich_covariance(&singular, 8.0).is_none());
    }

    /// Simulated moments on a linear model `μ(θ) = Xθ` whose noise has the shape of
    /// brandsim's series (a running stock, a random walk over 30 days, and 30 days
    /// of independent flows), with diagonal weights that ignore the stock's serial
    /// correlation: over 8000 data sets, each fitted on its own `R = 8` common
    /// replications, the estimates spread as the closed-form sandwich
    /// `(1 + 1/R)·A⁻¹XᵀWΩWXA⁻¹` says, the sandwich estimated from 64 replications
    /// at each answer agrees with it on average, and its 95% intervals cover the
    /// truth 95% of the time. (Tolerances: 4 standard errors of each Monte Carlo
    /// quantity; fixed seed.)
    #[test]
    fn linear_simulated_moments_spread_as_the_sandwich_says() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let days = 30;
        let n = 2 * days;
        let x = DMatrix::from_fn(n, 2, |c, i| match (c < days, i) {
            (true, 0) => c as f64,
            (true, _) => 1.0,
            (false, 0) => 1.0,
            (false, _) => (c - days) as f64 / 10.0,
        });
        let truth = [0.5, -1.0];
        // Ω: a random walk (cov min(s, t) + 1) then independent cells of variance 4.
        let omega = DMatrix::from_fn(n, n, |a, b| match (a < days, b < days) {
            (true, true) => a.min(b) as f64 + 1.0,
            (false, false) if a == b => 4.0,
            _ => 0.0,
        });
        let weights: Vec<f64> = (0..n).map(|c| 1.0 / omega[(c, c)]).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        let mut noise = || -> Vec<f64> {
            let z: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
            let mut walk = 0.0;
            (0..n)
                .map(|c| {
                    if c < days {
                        walk += z[c];
                        walk
                    } else {
                        2.0 * z[c]
                    }
                })
                .collect()
        };
        let w = DMatrix::from_diagonal(&DVector::from_column_slice(&weights));
        let a_inverse = (x.transpose() * &w * &x).try_inverse().unwrap();
        let (r, r_precision) = (8, 64);
        let exact = &a_inverse
            * (x.transpose() * &w * &omega * &w * &x)
            * &a_inverse
            * (1.0 + 1.0 / r as f64);
        let sets = 8000;
        let mut estimates = vec![Vec::new(); 2];
        let mut estimated_variance = [0.0; 2];
        let mut covered = [0; 2];
        for _ in 0..sets {
            let truth_v = DVector::from_column_slice(&truth);
            let y = &x * &truth_v + DVector::from_vec(noise());
            let simulation: Vec<Vec<f64>> = (0..r_precision).map(|_| noise()).collect();
            let search_mean = DVector::from_fn(n, |c, _| {
                simulation[..r].iter().map(|e| e[c]).sum::<f64>() / r as f64
            });
            // The minimiser of Σ w (y − Xθ − ē)², in closed form.
            let estimate = &a_inverse * x.transpose() * &w * (&y - &search_mean);
            let cells: Vec<Vec<f64>> = simulation
                .iter()
                .map(|e| {
                    let mu = &x * &estimate;
                    (0..n).map(|c| mu[c] + e[c]).collect()
                })
                .collect();
            let covariance =
                sandwich_covariance(&sandwich_parts(&x, &weights, &cells), r as f64).unwrap();
            for i in 0..2 {
                estimates[i].push(estimate[i]);
                estimated_variance[i] += covariance[(i, i)] / sets as f64;
                let half = crate::fit::Z95 * covariance[(i, i)].sqrt();
                covered[i] += usize::from((estimate[i] - truth[i]).abs() <= half);
            }
        }
        for i in 0..2 {
            let (mean, sd) = crate::stats::mean_sd(&estimates[i]);
            let exact_sd = exact[(i, i)].sqrt();
            let sd_se = exact_sd / (2.0 * sets as f64).sqrt();
            assert!(
                (mean - truth[i]).abs() < 4.0 * exact_sd / (sets as f64).sqrt(),
                "{i}: mean {mean}"
            );
            assert!(
                (sd - exact_sd).abs() < 4.0 * sd_se,
                "{i}: sd {sd} vs sandwich {exact_sd}"
            );
            // The estimated variance (64 replications, relative sd √(2/63) each) is
            // unbiased for the exact one: its mean over the sets is within 1%.
            let ratio = estimated_variance[i] / exact[(i, i)];
            assert!(
                (ratio - 1.0).abs() < 0.01,
                "{i}: mean estimated / exact variance {ratio}"
            );
            let share = covered[i] as f64 / sets as f64;
            let share_se = (0.95 * 0.05 / sets as f64).sqrt();
            assert!(
                (share - 0.95).abs() < 4.0 * share_se,
                "{i}: coverage {share}"
            );
        }
    }

    #[test]
    fn weights_are_inverse_variances_with_a_floor() {
        let observed = Observed {
            file: "o".into(),
            series: vec![ObservedSeries {
                name: "registrations",
                cells: vec![(0, 1.0), (1, 1.0), (2, 1.0)],
            }],
            schedule: None,
        };
        let w = weights_from_variance(&observed, &[0.0, 2.0, 4.0]);
        assert_eq!(w, [1.0 / 0.5, 0.5, 0.25]);
        assert_eq!(weights_from_variance(&observed, &[0.0; 3]), [1.0; 3]);
        let m = moments(&[vec![1.0, 2.0], vec![3.0, 2.0]]);
        assert_eq!(m.mean, [2.0, 2.0]);
        assert_eq!(m.variance, [2.0, 0.0]);
    }
}
