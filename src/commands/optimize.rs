//! `brandsim optimize FILE`: tunes the brand value (and other numeric scenario
//! values) by stochastic gradient steps and writes `trace.csv`, `optimize.json`,
//! `trace.svg` and the scenario at the answer.

use std::path::Path;
use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};

use super::study_dir::interrupt_flag;
use super::{
    CliError, Reuse, assignments, create_output_dir, lock_output, progress_bar, write_output,
};
use crate::cli::{OptimizeArgs, StudyArgs};
use crate::optimize::{
    self, Control, OptimizeError, Optimum, Problem, Step, TunedParameter, convergence,
};
use crate::report;
use crate::scenario::{self, Assignment, Estimator, OptimizeSettings};
use crate::study::output_dir::{Marker, MarkerState};
use crate::study::thread_pool;

impl From<OptimizeError> for CliError {
    fn from(error: OptimizeError) -> Self {
        match error {
            OptimizeError::Scenario(error) => CliError::Scenario(error),
            other => CliError::Usage(other.to_string()),
        }
    }
}

/// Entry point of `brandsim optimize`: a new search into its output directory, or
/// `--resume DIR` to continue an interrupted one. Ctrl-C (or SIGTERM) stops it
/// between steps with exit code 130, keeping the steps done in `trace.csv`.
pub fn run(file: &Path, tuning: &OptimizeArgs, args: &StudyArgs) -> Result<(), CliError> {
    if args.shard.is_some() {
        return Err(CliError::Usage(
            "brandsim optimize does not take --shard: each step needs the one before".to_string(),
        ));
    }
    let mut assignments = assignments(file, args)?;
    assignments.extend(tuning_assignments(tuning));
    let (scenario, source) = scenario::load_file(file, &assignments)?;
    let parameters = tuning
        .params
        .iter()
        .map(|text| optimize::parse_parameter(text))
        .collect::<Result<Vec<_>, _>>()?;
    let budgets = tuning
        .budgets
        .iter()
        .map(|text| optimize::budget::parse_budget(text))
        .collect::<Result<Vec<_>, _>>()?;
    let mut settings = scenario.optimize.clone();
    settings.adaptive |= tuning.adaptive;
    let study = super::study_identity(
        "optimize",
        &format!(
            "{:?} budgets {:?} adaptive {}",
            tuning.params, tuning.budgets, settings.adaptive
        ),
        &source,
    );
    let problem = Problem::with_budgets(source, parameters, budgets)?;
    optimize::check_search(&problem, &settings)?;
    let lock = lock_output(args, &scenario)?;
    let dir = lock.dir().to_path_buf();
    let done = if args.resume.is_some() {
        resumed_steps(&dir, &study, &problem, &settings)?
    } else {
        create_output_dir(&dir, &study, args.force, Reuse::Rewrite)?;
        Vec::new()
    };
    let pool = thread_pool(args.threads);
    let keys: Vec<String> = problem.parameters.iter().map(|p| p.key.clone()).collect();

    let bar = progress_bar(u64::from(settings.iterations), "steps", args.quiet);
    bar.inc(done.len() as u64);
    let write_error = std::sync::Mutex::new(None);
    let on_step = |steps: &[Step]| {
        bar.inc(1);
        if let Err(error) = write_output(&dir, "trace.csv", &trace_csv(&keys, steps)) {
            write_error
                .lock()
                .expect("not poisoned")
                .get_or_insert(error);
            interrupt_flag().store(true, Ordering::SeqCst);
        }
    };
    let outcome = optimize::search(
        &problem,
        &settings,
        scenario.simulation.replications,
        &pool,
        &Control {
            on_step: &on_step,
            stop: interrupt_flag(),
            done,
        },
    );
    bar.finish_and_clear();
    if let Some(error) = write_error.into_inner().expect("not poisoned") {
        return Err(error);
    }
    let optimum = match outcome? {
        optimize::Outcome::Finished(optimum) => optimum,
        optimize::Outcome::Interrupted(steps) => {
            eprintln!(
                "interrupted: {} of at most {} steps are saved in {}; continue with: {}",
                steps.len(),
                settings.iterations,
                dir.join("trace.csv").display(),
                resume_command(&dir)
            );
            return Err(CliError::Interrupted);
        }
    };

    let json = optimize_json(&problem, &settings, &optimum, pool.current_num_threads());
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");
    let plot = optimize::plot::trace_svg(&optimum.steps, &keys, &settings.objective)
        .map_err(|message| CliError::Usage(format!("cannot draw trace.svg: {message}")))?;
    let resolved = problem.source_at(&optimum.parameters)?.resolved_toml();
    write_output(&dir, "trace.csv", &trace_csv(&keys, &optimum.steps))?;
    write_output(&dir, "scenario.toml", resolved.as_bytes())?;
    write_output(&dir, "trace.svg", plot.as_bytes())?;
    write_output(&dir, "optimize.json", json_text.as_bytes())?;
    super::report::write_for_study(&dir)?;

    if args.json {
        outln!("{json_text}");
    } else {
        out!("{}", answer_table(&problem, &settings, &optimum));
        outln!("wrote {}", dir.display());
    }
    Ok(())
}

/// The command that continues this search: the command line as given, without
/// `--force`, with `--resume DIR` (unless it has it), quoted for a POSIX shell.
fn resume_command(dir: &Path) -> String {
    let mut words: Vec<String> = vec!["brandsim".to_string()];
    let given: Vec<String> = std::env::args().skip(1).collect();
    let mut resumed = false;
    let mut i = 0;
    while i < given.len() {
        let word = &given[i];
        if word == "--force" {
            i += 1;
            continue;
        }
        resumed |= word == "--resume" || word.starts_with("--resume=");
        words.push(word.clone());
        i += 1;
    }
    if !resumed {
        words.push("--resume".to_string());
        words.push(dir.display().to_string());
    }
    super::command_line(&words)
}

/// The steps stored in `dir` by an interrupted search of the same study, read
/// back from `trace.csv` exactly (every number is written in its shortest
/// round-trip form). A directory of another study, or a trace that is not this
/// search's, is refused.
fn resumed_steps(
    dir: &Path,
    study: &str,
    problem: &Problem,
    settings: &OptimizeSettings,
) -> Result<Vec<Step>, CliError> {
    let usage = |what: String| CliError::Usage(format!("--resume {}: {what}", dir.display()));
    match Marker::read(dir) {
        MarkerState::Current(marker) if marker.identity == study => {}
        MarkerState::Current(_) | MarkerState::Old => {
            return Err(usage(
                "holds a different study (another scenario, option or tuned key); resume it with the command that started it".to_string(),
            ));
        }
        MarkerState::Absent => {
            return Err(usage(
                "holds no brandsim optimize search to resume".to_string(),
            ));
        }
    }
    let path = dir.join("trace.csv");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CliError::Output { path, source }),
    };
    let keys: Vec<String> = problem.parameters.iter().map(|p| p.key.clone()).collect();
    read_trace(&text, &keys, problem, settings)
        .map_err(|message| usage(format!("{}: {message}", path.display())))
}

/// Parses `trace.csv` back into steps (see [`trace_csv`]).
fn read_trace(
    text: &str,
    keys: &[String],
    problem: &Problem,
    settings: &OptimizeSettings,
) -> Result<Vec<Step>, String> {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(String::from)
        .collect();
    if header != trace_header(keys) {
        return Err("its header is not that of this search's trace".to_string());
    }
    let d = keys.len();
    let mut steps = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| format!("line {line}: {e}"))?;
        let field = |i: usize| -> Result<f64, String> {
            let cell = record.get(i).unwrap_or("");
            cell.parse::<f64>().map_err(|_| {
                format!(
                    "line {line}, column {}: expected a number, found {cell:?}",
                    i + 1
                )
            })
        };
        let numbers =
            |from: usize| -> Result<Vec<f64>, String> { (from..from + d).map(field).collect() };
        let step: u32 = record
            .get(0)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("line {line}, column 1: expected a step number"))?;
        let parameters = numbers(1)?;
        let base = 1 + d;
        let (mean, low, high) = (field(base)?, field(base + 1)?, field(base + 2)?);
        let gradient = numbers(base + 6)?;
        let gradient_se = numbers(base + 6 + d)?;
        let after = base + 6 + 2 * d;
        let gain = field(after)?;
        let perturbation = match record.get(after + 1).unwrap_or("") {
            "" => None,
            _ => Some(field(after + 1)?),
        };
        let replications = record
            .get(after + 2)
            .and_then(|c| c.parse::<u32>().ok())
            .filter(|&r| r >= 1)
            .ok_or_else(|| {
                format!(
                    "line {line}, column {}: expected a count of replications",
                    after + 3
                )
            })?;
        let objective = crate::stats::Summary {
            mean,
            sd: field(after + 3)?,
            se: field(after + 4)?,
            ci95: [low, high],
            p05: field(after + 5)?,
            p50: field(after + 6)?,
            p95: field(after + 7)?,
        };
        steps.push(Step {
            step,
            penalty: problem.penalty(settings, &parameters),
            parameters,
            objective,
            gradient,
            gradient_se,
            gain,
            perturbation,
            replications,
        });
    }
    Ok(steps)
}

/// The `--objective`, `--estimator`, ... flags as `optimize.*` overrides, so the
/// scenario loader checks them like the file's `[optimize]` table.
fn tuning_assignments(tuning: &OptimizeArgs) -> Vec<Assignment> {
    let text = |key: &str, value: &Option<String>| {
        value.as_ref().map(|v| Assignment {
            key: format!("optimize.{key}"),
            value: toml::Value::String(v.clone()),
        })
    };
    let count = |key: &str, value: Option<u32>| {
        value.map(|v| Assignment {
            key: format!("optimize.{key}"),
            value: toml::Value::Integer(i64::from(v)),
        })
    };
    let number = |key: &str, value: Option<f64>| {
        value.map(|v| Assignment {
            key: format!("optimize.{key}"),
            value: toml::Value::Float(v),
        })
    };
    [
        text("objective", &tuning.objective),
        text("estimator", &tuning.estimator),
        count("iterations", tuning.iterations),
        number("learning_rate", tuning.learning_rate),
        number("regularization", tuning.regularization),
        number("perturbation", tuning.perturbation),
        count("replications_per_step", tuning.replications_per_step),
        number("tolerance", tuning.tolerance),
        number("budget_user_days", tuning.budget_user_days),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn estimator_name(estimator: Estimator) -> &'static str {
    match estimator {
        Estimator::Spsa => "spsa",
        Estimator::FiniteDifference => "fd",
        Estimator::LikelihoodRatio => "lr",
        Estimator::LikelihoodRatioWhole => "lr-whole",
    }
}

/// `{key path: value}` of the tuned values.
fn by_key(parameters: &[TunedParameter], values: &[f64]) -> Map<String, Value> {
    parameters
        .iter()
        .zip(values)
        .map(|(p, &v)| (p.key.clone(), json!(v)))
        .collect()
}

/// The convergence report of `optimize.json`: the verdict, why the search
/// stopped, and per tuned value the answer's standard error, the settling of the
/// iterates and the gradient of `J` at the answer.
fn convergence_json(problem: &Problem, optimum: &Optimum) -> Value {
    let d = &optimum.diagnostics;
    let number = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    let per_key: Map<String, Value> = problem
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let s = &d.settling[i];
            let mut entry = json!({
                "answer_se": number(s.answer_se),
                "drift": number(s.drift),
                "drift_se": number(s.drift_se),
                "settled": s.settled(),
            });
            if let Some(g) = d.gradient.get(i) {
                entry["marginal_return"] = json!({
                    "mean": number(g.marginal_return),
                    "se": number(g.marginal_return_se),
                });
                entry["gradient_of_j"] = json!({
                    "mean": number(g.stationarity),
                    "se": number(g.stationarity_se),
                    "ci95": [
                        number(g.stationarity - convergence::Z95 * g.stationarity_se),
                        number(g.stationarity + convergence::Z95 * g.stationarity_se),
                    ],
                    "zero_within_ci": g.is_stationary(),
                });
                entry["position"] = json!(g.position);
            }
            (p.key.clone(), entry)
        })
        .collect();
    json!({
        "converged": d.verdict.converged,
        "verdict": d.verdict.text(),
        "reasons": d.verdict.reasons,
        "stopped_by": d.stop,
        "averaged_iterates": d.window,
        "gradient_replications": d.gradient_replications,
        "parameters": per_key,
    })
}

/// Each `--budget` group at the answer: its allocation, and each key's marginal
/// return `∂E[M]/∂θ_i` with its standard error (equal across the keys inside
/// their bounds at an optimum, up to the penalty's `λ·θ_i`).
fn budgets_json(problem: &Problem, optimum: &Optimum) -> Value {
    let number = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    problem
        .budgets
        .iter()
        .map(|group| {
            let allocation: Map<String, Value> = group
                .indices
                .iter()
                .map(|&i| (problem.parameters[i].key.clone(), json!(optimum.parameters[i])))
                .collect();
            let returns: Map<String, Value> = group
                .indices
                .iter()
                .filter_map(|&i| {
                    let g = optimum.diagnostics.gradient.get(i)?;
                    Some((
                        problem.parameters[i].key.clone(),
                        json!({
                            "mean": number(g.marginal_return),
                            "se": number(g.marginal_return_se),
                            "position": g.position,
                        }),
                    ))
                })
                .collect();
            json!({
                "keys": group.keys,
                "total": group.total,
                "sum": group.indices.iter().map(|&i| optimum.parameters[i]).sum::<f64>(),
                "allocation": allocation,
                "marginal_returns": returns,
                "equal_marginal_returns": equal_returns(optimum, group),
                "note": "at an optimum inside the bounds the marginal returns of a group are equal (minus λ·value with regularization)",
            })
        })
        .collect()
}

/// Whether the marginal returns of `group`'s keys inside their bounds are equal
/// within their noise at the answer (the stationarity of each is zero).
fn equal_returns(optimum: &Optimum, group: &optimize::budget::BudgetGroup) -> bool {
    group.indices.iter().all(|&i| {
        optimum
            .diagnostics
            .gradient
            .get(i)
            .is_some_and(|g| g.is_stationary())
    })
}

/// `optimize.json`: the settings, each tuned value by key path (the answer with
/// its standard error, its start, the last iterate, its bounds), the convergence
/// report, the `--budget` groups, the objective at the answer from the
/// confirmation study, and the simulation work spent.
fn optimize_json(
    problem: &Problem,
    settings: &OptimizeSettings,
    optimum: &Optimum,
    threads: usize,
) -> Value {
    let bound = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    let bounds: Map<String, Value> = problem
        .parameters
        .iter()
        .map(|p| (p.key.clone(), json!([bound(p.lower), bound(p.upper)])))
        .collect();
    let answer_se: Map<String, Value> = problem
        .parameters
        .iter()
        .zip(&optimum.diagnostics.settling)
        .map(|(p, s)| (p.key.clone(), bound(s.answer_se)))
        .collect();
    let m = &optimum.confirmation;
    let scenario = &problem.base;
    json!({
        "scenario": scenario.name,
        "seed": scenario.simulation.seed,
        "population": scenario.market.population,
        "days": scenario.simulation.days,
        "objective": settings.objective,
        "estimator": estimator_name(settings.estimator),
        "iterations": settings.iterations,
        "steps_done": optimum.steps.len(),
        "learning_rate": settings.learning_rate,
        "regularization": settings.regularization,
        "perturbation": settings.perturbation,
        "replications_per_step": settings.replications_per_step,
        "adaptive": settings.adaptive,
        "tolerance": settings.tolerance,
        "budget_user_days": settings.budget_user_days,
        "parameters": by_key(&problem.parameters, &optimum.parameters),
        "answer_se": answer_se,
        "start": by_key(&problem.parameters, &problem.start),
        "last_iterate": by_key(&problem.parameters, &optimum.last_iterate),
        "bounds": bounds,
        "budgets": budgets_json(problem, optimum),
        "convergence": convergence_json(problem, optimum),
        "confirmation": {
            "replications": optimum.confirmation_replications,
            "first_replication": optimum.confirmation_first,
            "objective": serde_json::to_value(m).expect("plain numbers"),
            "penalty": optimum.penalty,
            "j": {
                "mean": m.mean - optimum.penalty,
                "ci95": [m.ci95[0] - optimum.penalty, m.ci95[1] - optimum.penalty],
            },
        },
        "simulations": optimum.simulations,
        "user_days": optimum.user_days,
        "seconds": optimum.seconds,
        "threads": threads,
    })
}

/// The columns of `trace.csv` for the tuned `keys`.
fn trace_header(keys: &[String]) -> Vec<String> {
    let mut header = vec!["step".to_string()];
    header.extend(keys.iter().cloned());
    header.extend(
        [
            "objective_mean",
            "objective_ci_low",
            "objective_ci_high",
            "j_mean",
            "j_ci_low",
            "j_ci_high",
        ]
        .map(String::from),
    );
    header.extend(keys.iter().map(|k| format!("grad_{k}")));
    header.extend(keys.iter().map(|k| format!("grad_se_{k}")));
    header.extend(
        [
            "gain",
            "perturbation",
            "replications",
            "objective_sd",
            "objective_se",
            "objective_p05",
            "objective_p50",
            "objective_p95",
        ]
        .map(String::from),
    );
    header
}

/// `trace.csv`: one row per step: `step`, θ_k by key path, the objective's mean and
/// CI, `J`'s mean and CI, then `grad_<key>` and `grad_se_<key>`, `gain`,
/// `perturbation`, the step's `replications`, and the rest of the objective's
/// summary. Every number in its shortest round-trip form, so `--resume` reads
/// the steps back exactly.
fn trace_csv(keys: &[String], steps: &[Step]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(trace_header(keys))
        .expect("write to memory");
    for step in steps {
        let m = &step.objective;
        let mut row = vec![step.step.to_string()];
        let numbers = step
            .parameters
            .iter()
            .copied()
            .chain([m.mean, m.ci95[0], m.ci95[1]])
            .chain([m.mean, m.ci95[0], m.ci95[1]].map(|x| x - step.penalty))
            .chain(step.gradient.iter().copied())
            .chain(step.gradient_se.iter().copied())
            .chain([step.gain]);
        row.extend(numbers.map(|x| x.to_string()));
        row.push(step.perturbation.map_or(String::new(), |c| c.to_string()));
        row.push(step.replications.to_string());
        row.extend([m.sd, m.se, m.p05, m.p50, m.p95].map(|x| x.to_string()));
        writer.write_record(&row).expect("write to memory");
    }
    writer.into_inner().expect("write to memory")
}

/// What `optimize` prints: the search, each tuned value from start to answer with
/// its standard error, the gradient of `J` there, each `--budget` group, the
/// objective at the answer, and the verdict.
fn answer_table(problem: &Problem, settings: &OptimizeSettings, optimum: &Optimum) -> String {
    use std::fmt::Write as _;
    let scenario = &problem.base;
    let d = &optimum.diagnostics;
    let mut out = String::new();
    let effort = if settings.adaptive {
        let counts: Vec<u32> = optimum.steps.iter().map(|s| s.replications).collect();
        format!(
            "{} steps (of at most {}), adaptive replications per step {}..{}",
            optimum.steps.len(),
            settings.iterations,
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0)
        )
    } else {
        format!(
            "{} steps x {} replications",
            optimum.steps.len(),
            settings.replications_per_step
        )
    };
    let _ = writeln!(
        out,
        "{}: maximise J = E[{}] - {}/2·|θ|² by {}, {effort}, η = {}, c = {}, seed {}",
        scenario.name,
        settings.objective,
        settings.regularization,
        estimator_name(settings.estimator),
        settings.learning_rate,
        settings.perturbation,
        scenario.simulation.seed,
    );
    let _ = writeln!(
        out,
        "{:<32} {:>12} {:>24} {:>12} {:>26}",
        "parameter", "start", "answer ± se", "last iterate", "dJ/dθ at answer (95% CI)"
    );
    for (i, p) in problem.parameters.iter().enumerate() {
        let se = d.settling[i].answer_se;
        let gradient = d.gradient.get(i).map_or("n/a".to_string(), |g| {
            format!(
                "{} ± {}",
                convergence::short(g.stationarity),
                convergence::short(convergence::Z95 * g.stationarity_se)
            )
        });
        let _ = writeln!(
            out,
            "{:<32} {:>12} {:>24} {:>12} {:>26}",
            p.key,
            report::number(problem.start[i]),
            format!(
                "{} ± {}",
                convergence::short(optimum.parameters[i]),
                convergence::short(se)
            ),
            report::number(optimum.last_iterate[i]),
            gradient,
        );
    }
    for group in &problem.budgets {
        let _ = writeln!(
            out,
            "budget {} = {}: allocation and marginal return dE[{}]/dθ (± se) at the answer",
            group.keys.join(" + "),
            group.total,
            settings.objective
        );
        for &i in &group.indices {
            let g = d.gradient.get(i);
            let _ = writeln!(
                out,
                "  {:<30} {:>14} {:>28} {}",
                problem.parameters[i].key,
                convergence::short(optimum.parameters[i]),
                g.map_or("n/a".to_string(), |g| format!(
                    "{} ± {}",
                    convergence::short(g.marginal_return),
                    convergence::short(g.marginal_return_se)
                )),
                g.map_or("", |g| if g.position == "inside" {
                    ""
                } else {
                    g.position
                }),
            );
        }
        let _ = writeln!(
            out,
            "  at an optimum inside the bounds the marginal returns are equal: {}",
            if equal_returns(optimum, group) {
                "they are, within their noise"
            } else {
                "they are not yet"
            }
        );
    }
    let m = &optimum.confirmation;
    let ci = |low: f64, high: f64| {
        if low.is_nan() {
            "n/a".to_string()
        } else {
            format!("[{}, {}]", report::number(low), report::number(high))
        }
    };
    let _ = writeln!(
        out,
        "at the answer ({} fresh replications): {} = {} {}, J = {} {}",
        optimum.confirmation_replications,
        settings.objective,
        report::number(m.mean),
        ci(m.ci95[0], m.ci95[1]),
        report::number(m.mean - optimum.penalty),
        ci(m.ci95[0] - optimum.penalty, m.ci95[1] - optimum.penalty),
    );
    let stopped = match d.stop {
        convergence::Stop::Iterations => "after every iteration",
        convergence::Stop::Converged => "once converged",
        convergence::Stop::Budget => "at the budget of user-days",
    };
    let _ = writeln!(
        out,
        "verdict ({} averaged iterates, stopped {stopped}): {}",
        d.window,
        d.verdict.text()
    );
    let _ = writeln!(
        out,
        "spent {:.3e} user-days ({} replications) in {:.1} s",
        optimum.user_days, optimum.simulations, optimum.seconds
    );
    out
}
