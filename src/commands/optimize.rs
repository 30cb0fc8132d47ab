//! `brandsim optimize FILE`: tunes the brand value (and other numeric scenario
//! values) by stochastic gradient steps and writes `trace.csv`, `optimize.json`,
//! `trace.svg` and the scenario at the answer.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::{
    CliError, Reuse, assignments, create_output_dir, lock_output, progress_bar, write_output,
};
use crate::cli::{OptimizeArgs, StudyArgs};
use crate::optimize::{self, OptimizeError, Optimum, Problem, Step, TunedParameter};
use crate::report;
use crate::scenario::{self, Assignment, Estimator, OptimizeSettings};
use crate::study::thread_pool;

impl From<OptimizeError> for CliError {
    fn from(error: OptimizeError) -> Self {
        match error {
            OptimizeError::Scenario(error) => CliError::Scenario(error),
            other => CliError::Usage(other.to_string()),
        }
    }
}

/// Entry point of `brandsim optimize`.
pub fn run(file: &Path, tuning: &OptimizeArgs, args: &StudyArgs) -> Result<(), CliError> {
    super::refuse_store_options("optimize", args)?;
    let mut assignments = assignments(file, args)?;
    assignments.extend(tuning_assignments(tuning));
    let (scenario, source) = scenario::load_file(file, &assignments)?;
    let parameters = tuning
        .params
        .iter()
        .map(|text| optimize::parse_parameter(text))
        .collect::<Result<Vec<_>, _>>()?;
    let study = super::study_identity("optimize", &format!("{:?}", tuning.params), &source);
    let problem = Problem::new(source, parameters)?;
    let settings = scenario.optimize.clone();
    let lock = lock_output(args, &scenario)?;
    let dir = lock.dir().to_path_buf();
    super::check_output_dir(&dir, &study, args.force, Reuse::Rewrite)?;
    let pool = thread_pool(args.threads);

    let bar = progress_bar(u64::from(settings.iterations), "steps", args.quiet);
    let optimum = optimize::optimize(
        &problem,
        &settings,
        scenario.simulation.replications,
        &pool,
        &|_| bar.inc(1),
    )?;
    bar.finish_and_clear();

    let keys: Vec<String> = problem.parameters.iter().map(|p| p.key.clone()).collect();
    let json = optimize_json(&problem, &settings, &optimum, pool.current_num_threads());
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");
    let plot = optimize::plot::trace_svg(&optimum.steps, &keys, &settings.objective)
        .map_err(|message| CliError::Usage(format!("cannot draw trace.svg: {message}")))?;
    let resolved = problem.source_at(&optimum.parameters)?.resolved_toml();
    create_output_dir(&dir, &study, args.force, Reuse::Rewrite)?;
    write_output(&dir, "scenario.toml", resolved.as_bytes())?;
    write_output(&dir, "trace.csv", &trace_csv(&keys, &optimum.steps))?;
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

/// `optimize.json`: the settings, each tuned value by key path (the answer, its
/// start, the last iterate, its bounds), the objective at the answer from the
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
        "learning_rate": settings.learning_rate,
        "regularization": settings.regularization,
        "perturbation": settings.perturbation,
        "replications_per_step": settings.replications_per_step,
        "parameters": by_key(&problem.parameters, &optimum.parameters),
        "start": by_key(&problem.parameters, &problem.start),
        "last_iterate": by_key(&problem.parameters, &optimum.last_iterate),
        "bounds": bounds,
        "confirmation": {
            "replications": optimum.confirmation_replications,
            "first_replication": u64::from(settings.iterations) * u64::from(settings.replications_per_step),
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

/// `trace.csv`: one row per step: `step`, θ_k by key path, the objective's mean and
/// CI, `J`'s mean and CI, then `grad_<key>` and `grad_se_<key>`, `gain`, `perturbation`.
fn trace_csv(keys: &[String], steps: &[Step]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
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
    header.extend(["gain", "perturbation"].map(String::from));
    writer.write_record(&header).expect("write to memory");
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
        writer.write_record(&row).expect("write to memory");
    }
    writer.into_inner().expect("write to memory")
}

/// What `optimize` prints: the search, each tuned value from start to answer, and
/// the objective at the answer.
fn answer_table(problem: &Problem, settings: &OptimizeSettings, optimum: &Optimum) -> String {
    use std::fmt::Write as _;
    let scenario = &problem.base;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: maximise J = E[{}] - {}/2·|θ|² by {}, {} steps x {} replications, η = {}, c = {}, seed {}",
        scenario.name,
        settings.objective,
        settings.regularization,
        estimator_name(settings.estimator),
        settings.iterations,
        settings.replications_per_step,
        settings.learning_rate,
        settings.perturbation,
        scenario.simulation.seed,
    );
    let _ = writeln!(
        out,
        "{:<32} {:>14} {:>14} {:>14}",
        "parameter", "start", "answer", "last iterate"
    );
    for (i, p) in problem.parameters.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<32} {:>14} {:>14} {:>14}",
            p.key,
            report::number(problem.start[i]),
            report::number(optimum.parameters[i]),
            report::number(optimum.last_iterate[i])
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
    let _ = writeln!(
        out,
        "spent {:.3e} user-days ({} replications) in {:.1} s",
        optimum.user_days, optimum.simulations, optimum.seconds
    );
    out
}
