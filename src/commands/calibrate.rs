//! `brandsim calibrate FILE --data OBSERVED.csv --param KEY[=LO:HI]...`: fits
//! scenario values to observed daily series by simulated moments and writes
//! `calibration.json`, `calibration.csv`, the calibrated `scenario.toml`, one plot per
//! series and the journal of evaluations that `--resume` continues from.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use super::study_dir::interrupt_flag;
use super::{
    CliError, Reuse, assignments, check_output_dir, create_output_dir, lock_named_output,
    lock_output, progress_bar, write_output, write_plots,
};
use crate::cli::{CalibrateArgs, PlotArgs, StudyArgs};
use crate::fit::Estimate;
use crate::fit::calibrate::{
    Calibration, CalibrationResult, Moments, Observed, ObservedSchedule, SearchSettings,
    read_observed,
};
use crate::fit::data::Table;
use crate::optimize::{self, Problem};
use crate::plots::{FitCurve, FitPoints, fit_chart};
use crate::report;
use crate::scenario::{self, ScenarioSource};
use crate::stats::quantile;
use crate::study::output_dir::{Marker, MarkerState};
use crate::study::thread_pool;

/// The journal of evaluations in the output directory: one JSON line per simulated
/// `θ` with the moments of the observed cells there.
pub const JOURNAL: &str = "evaluations.jsonl";

/// Entry point of `brandsim calibrate`.
pub fn run(
    file: &Path,
    calibration: &CalibrateArgs,
    args: &StudyArgs,
    plots: &PlotArgs,
) -> Result<(), CliError> {
    if args.shard.is_some() {
        return Err(CliError::Usage(
            "brandsim calibrate does not take --shard: its evaluations depend on each other".into(),
        ));
    }
    if calibration.starts == 0 || calibration.max_iterations == 0 {
        return Err(CliError::Usage(
            "--starts and --max-iterations: expected at least 1".into(),
        ));
    }
    let (scenario, source) = scenario::load_file(file, &assignments(file, args)?)?;
    let table = Table::read(&calibration.data)?;
    let observed = read_observed(
        &table,
        scenario.simulation.days,
        scenario.calendar.start_date,
    )?;
    // The key-path columns of the data (the spend per channel, ...) are what the
    // market saw: the calibrated scenario's schedule.
    let (scenario, source) = match &observed.schedule {
        None => (scenario, source),
        Some(schedule) => source.with_schedule_rows(
            &observed.file,
            schedule_rows(schedule),
            schedule.rows.iter().map(|r| r.line as usize).collect(),
            schedule.header.clone(),
        )?,
    };
    let replications = scenario.simulation.replications;
    if replications < 2 {
        return Err(CliError::Usage(format!(
            "--replications {replications}: calibration needs at least 2 replications per evaluation (their variance weighs the cells)"
        )));
    }
    // Every evaluation holds the outcomes of all its replications at once (the
    // most on --se-replications): refuse, before anything is written, a count
    // whose outcomes cannot fit in memory even one replication at a time.
    crate::guard::plan_study(
        &scenario,
        replications.max(calibration.se_replications) as usize,
        1,
        crate::guard::available_memory(),
    )
    .map_err(|mut error| {
        if calibration.se_replications > replications {
            error.replications_option = "--se-replications";
        }
        error
    })?;
    let parameters = calibration
        .params
        .iter()
        .map(|text| optimize::parse_parameter(text))
        .collect::<Result<Vec<_>, _>>()?;
    let problem = Problem::new(source.clone(), parameters)?;
    let data_bytes = std::fs::read(&calibration.data).unwrap_or_default();

    // Locked for the whole command: `--resume DIR`, `--out DIR`, or a new
    // `runs/<scenario>-calibration-<timestamp>/`.
    let lock = match (&args.resume, &args.out) {
        (None, None) => lock_named_output(None, &format!("{}-calibration", scenario.name))?,
        _ => lock_output(args, &scenario)?,
    };
    let dir = lock.dir().to_path_buf();
    let study = super::study_identity(
        "calibrate",
        &format!(
            "{:?} starts {} max_iterations {} bootstrap {} se_replications {}\n{}",
            calibration.params,
            calibration.starts,
            calibration.max_iterations,
            calibration.bootstrap,
            calibration.se_replications,
            String::from_utf8_lossy(&data_bytes)
        ),
        &source,
    );
    let journal_path = dir.join(JOURNAL);
    let cache = if args.resume.is_some() {
        match Marker::read(&dir) {
            MarkerState::Current(marker) if marker.identity == study => {}
            MarkerState::Current(marker) if marker.identity.starts_with("brandsim calibrate\n") => {
                return Err(CliError::Usage(format!(
                    "--resume {}: holds a different calibration (scenario, data, --param or search options differ); \
                     resume with the command line that started it",
                    dir.display()
                )));
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "--resume {}: holds no brandsim calibration",
                    dir.display()
                )));
            }
        }
        read_journal(&journal_path, problem.parameters.len(), observed.len())
    } else {
        check_output_dir(&dir, &study, args.force, Reuse::Resume)?;
        if journal_path.exists() && !args.force {
            return Err(CliError::Usage(format!(
                "--out {}: already holds this calibration; continue it with --resume {}, or pass --force to start over",
                dir.display(),
                dir.display()
            )));
        }
        // With --force, the previous study's files (the journal among them) are deleted.
        create_output_dir(&dir, &study, args.force, Reuse::Resume)?;
        Vec::new()
    };
    let resumed = cache.len();
    let journal = Mutex::new(JournalWriter::open(&journal_path)?);
    // The journal is brandsim's own file (what --force may delete).
    Marker::record(&dir, JOURNAL)?;

    let settings = SearchSettings {
        starts: calibration.starts,
        max_iterations: calibration.max_iterations,
        bootstrap: calibration.bootstrap,
    };
    let k = problem.parameters.len() as u64;
    let most = (u64::from(settings.starts) + 1 + u64::from(settings.bootstrap))
        * (u64::from(settings.max_iterations) * 2 + k + 1)
        + 2 * k
        + 2;
    let bar = progress_bar(most, "evaluations (at most)", args.quiet);
    let on_evaluation = |theta: &[f64], moments: &Moments| {
        journal.lock().expect("journal lock").append(theta, moments);
        bar.inc(1);
    };
    let pool = thread_pool(args.threads);
    let stop = interrupt_flag();
    let started = std::time::Instant::now();
    let calibrator = Calibration::new(
        &problem,
        &observed,
        replications,
        calibration.se_replications,
        &pool,
        stop,
        cache,
        &on_evaluation,
    );
    let result = calibrator.run(&settings, &|stage| bar.set_message(stage.to_string()));
    bar.finish_and_clear();
    let simulated_now = calibrator.simulated();
    let precision_replications = calibrator.precision_replications.len() as u32;
    drop(calibrator);
    journal.into_inner().expect("journal lock").finish()?;
    let Some(result) = result else {
        let mut resume = vec![
            "brandsim".to_string(),
            "calibrate".to_string(),
            file.display().to_string(),
            "--data".to_string(),
            calibration.data.display().to_string(),
        ];
        resume.extend(resume_options(calibration, args));
        resume.extend(super::repeated_options(args, Some(plots)));
        resume.extend(["--resume".to_string(), dir.display().to_string()]);
        eprintln!(
            "interrupted: {} evaluations are saved in {}; continue with: {}",
            resumed as u64 + simulated_now,
            dir.display(),
            super::command_line(&resume)
        );
        return Err(CliError::Interrupted);
    };
    let seconds = started.elapsed().as_secs_f64();

    let (resolved, held_uncertain) =
        with_fitted_uncertainty(problem.source_at(&result.estimate)?, &problem, &result);
    let resolved = resolved.resolved_toml();
    let json = calibration_json(
        &problem,
        &observed,
        &result,
        (replications, precision_replications),
        settings,
        seconds,
        resumed,
    );
    let mut json = json;
    json["uncertain"] = Value::Array(
        held_uncertain
            .iter()
            .map(|(key, held)| match held {
                Ok((mean, sd)) => {
                    json!({"key": key, "distribution": "normal", "mean": mean, "sd": sd})
                }
                Err(reason) => json!({"key": key, "not_held_uncertain": reason}),
            })
            .collect(),
    );
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");
    write_output(&dir, "scenario.toml", resolved.as_bytes())?;
    write_output(&dir, "calibration.json", json_text.as_bytes())?;
    write_output(&dir, "calibration.csv", &series_csv(&observed, &result))?;
    if !plots.no_plots {
        let drawn = observed
            .series
            .iter()
            .zip(&result.bands)
            .map(|(series, bands)| {
                fit_chart(
                    &format!("calibration-{}", series.name),
                    &format!(
                        "{}: observed vs simulated at the fitted values (mean, 5-95% band, {precision_replications} replications)",
                        series.name
                    ),
                    ("day", crate::plots::unit(series.name)),
                    &[FitCurve {
                        label: "simulated mean".into(),
                        line: bands.iter().enumerate().map(|(d, b)| (d as f64, b.0)).collect(),
                        band: bands.iter().enumerate().map(|(d, b)| (d as f64, b.1, b.2)).collect(),
                    }],
                    &[FitPoints {
                        label: "observed".into(),
                        points: series.cells.iter().map(|&(d, y)| (d as f64, y)).collect(),
                    }],
                    plots.plot_format,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        write_plots(&dir, &drawn)?;
    }
    for (key, held) in &held_uncertain {
        if let Err(reason) = held {
            eprintln!(
                "warning: {key} is written at its estimate but not held uncertain in scenario.toml: {reason}"
            );
        }
    }
    for key in &result.inert {
        eprintln!(
            "warning: {key} does not move the simulated series at the answer: not identifiable from these series; \
             fix it with --set, or observe a series it acts on"
        );
    }
    for pair in &result.unidentified {
        eprintln!(
            "warning: {} and {} are correlated {:.3}: not identifiable from these series (they move the simulated series \
             only together, e.g. through their sum or product); fix one with --set, or observe a series that tells them apart",
            pair.keys[0], pair.keys[1], pair.correlation
        );
    }
    super::report::write_for_study(&dir)?;
    if args.json {
        outln!("{json_text}");
    } else {
        out!(
            "{}",
            answer_table(
                &problem,
                &observed,
                &result,
                (replications, precision_replications),
                seconds
            )
        );
        if resumed > 0 {
            outln!(
                "resumed {}: {resumed} evaluations were already done",
                dir.display()
            );
        }
        outln!("wrote {}", dir.display());
    }
    Ok(())
}

/// The schedule rows (`{ day = t, "<key path>" = value }`) of the key-path
/// columns of the observed data.
fn schedule_rows(schedule: &ObservedSchedule) -> Vec<toml::Table> {
    schedule
        .rows
        .iter()
        .map(|row| {
            let mut table = toml::Table::new();
            table.insert("day".into(), toml::Value::Integer(i64::from(row.day)));
            for (key, value) in &row.set {
                table.insert(key.clone(), toml::Value::Float(*value));
            }
            table
        })
        .collect()
}

/// The options to repeat on `--resume` (the same search), one word each.
fn resume_options(calibration: &CalibrateArgs, args: &StudyArgs) -> Vec<String> {
    let mut words = Vec::new();
    for p in &calibration.params {
        words.extend(["--param".to_string(), p.clone()]);
    }
    words.extend(["--starts".to_string(), calibration.starts.to_string()]);
    words.extend([
        "--max-iterations".to_string(),
        calibration.max_iterations.to_string(),
    ]);
    if calibration.bootstrap > 0 {
        words.extend(["--bootstrap".to_string(), calibration.bootstrap.to_string()]);
    }
    words.extend([
        "--se-replications".to_string(),
        calibration.se_replications.to_string(),
    ]);
    for s in &args.set {
        words.extend(["--set".to_string(), s.clone()]);
    }
    if let Some(seed) = args.seed {
        words.extend(["--seed".to_string(), seed.to_string()]);
    }
    if let Some(r) = args.replications {
        words.extend(["-r".to_string(), r.to_string()]);
    }
    words
}

/// Appends evaluations to the journal, one JSON line each, flushed at once so that
/// Ctrl-C or a crash loses at most the evaluation under way.
struct JournalWriter {
    path: PathBuf,
    file: std::fs::File,
    error: Option<std::io::Error>,
}

impl JournalWriter {
    fn open(path: &Path) -> Result<Self, CliError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| CliError::Output {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(JournalWriter {
            path: path.to_path_buf(),
            file,
            error: None,
        })
    }

    fn append(&mut self, theta: &[f64], moments: &Moments) {
        if self.error.is_some() {
            return;
        }
        let line = json!({"theta": theta, "mean": moments.mean, "variance": moments.variance});
        let written = writeln!(self.file, "{line}").and_then(|_| self.file.flush());
        if let Err(error) = written {
            self.error = Some(error);
        }
    }

    fn finish(self) -> Result<(), CliError> {
        match self.error {
            Some(source) => Err(CliError::Output {
                path: self.path,
                source,
            }),
            None => Ok(()),
        }
    }
}

/// The evaluations of an interrupted calibration; a line that does not parse (the
/// one being written when the process died) or has the wrong shape is skipped.
fn read_journal(path: &Path, parameters: usize, cells: usize) -> Vec<(Vec<f64>, Moments)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let value: Value = serde_json::from_str(line).ok()?;
            let theta: Vec<f64> = serde_json::from_value(value.get("theta")?.clone()).ok()?;
            let moments = Moments {
                mean: serde_json::from_value(value.get("mean")?.clone()).ok()?,
                variance: serde_json::from_value(value.get("variance")?.clone()).ok()?,
            };
            (theta.len() == parameters
                && moments.mean.len() == cells
                && moments.variance.len() == cells)
                .then_some((theta, moments))
        })
        .collect()
}

/// The 95% interval `x ± 1.96·se` of fitted value `i`, cut to its `--param` bounds
/// (the value cannot lie outside them).
fn interval(problem: &Problem, result: &CalibrationResult, i: usize) -> [f64; 2] {
    let e = Estimate::wald(result.estimate[i], result.se[i]);
    let p = &problem.parameters[i];
    [e.ci95[0].max(p.lower), e.ci95[1].min(p.upper)]
}

/// Bootstrap sd and 2.5–97.5% percentile interval of parameter `i`.
fn bootstrap_summary(result: &CalibrationResult, i: usize) -> Option<(f64, [f64; 2])> {
    if result.bootstrap.len() < 2 {
        return None;
    }
    let mut values: Vec<f64> = result.bootstrap.iter().map(|b| b[i]).collect();
    let (_, sd) = crate::stats::mean_sd(&values);
    values.sort_by(f64::total_cmp);
    Some((sd, [quantile(&values, 0.025), quantile(&values, 0.975)]))
}

fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// `calibration.json`: the fitted values with standard errors and intervals, their
/// correlations and identifiability warnings, the fit per series, the searches.
/// A fitted value held uncertain, `(mean, sd)`, or why it could not be.
type HeldUncertain = Result<(f64, f64), String>;

/// The calibrated scenario with each fitted value held uncertain (MODEL.md v2,
/// "Parameter uncertainty"): `[[uncertain]] key = K, distribution = "normal",
/// mean = estimate, sd = standard error`, truncated to the key's range when
/// drawn, so "calibrate, then compare" carries the fit's uncertainty through.
/// A value whose standard error is not positive and finite, or whose key
/// cannot be uncertain, keeps its estimate alone; the reason is returned.
fn with_fitted_uncertainty(
    mut source: ScenarioSource,
    problem: &Problem,
    result: &CalibrationResult,
) -> (ScenarioSource, Vec<(String, HeldUncertain)>) {
    let mut held = Vec::new();
    for (i, parameter) in problem.parameters.iter().enumerate() {
        let (mean, sd) = (result.estimate[i], result.se[i]);
        let outcome = if !(sd.is_finite() && sd > 0.0) {
            Err("its standard error is not a positive number (not identifiable)".to_string())
        } else {
            match source.with_uncertain_normal(&parameter.key, mean, sd) {
                Ok((_, next)) => {
                    source = next;
                    Ok((mean, sd))
                }
                Err(error) => Err(error.message),
            }
        };
        held.push((parameter.key.clone(), outcome));
    }
    (source, held)
}

fn calibration_json(
    problem: &Problem,
    observed: &Observed,
    result: &CalibrationResult,
    (replications, precision_replications): (u32, u32),
    settings: SearchSettings,
    seconds: f64,
    resumed: usize,
) -> Value {
    let keys: Vec<&str> = problem.parameters.iter().map(|p| p.key.as_str()).collect();
    let mut parameters = Map::new();
    for (i, p) in problem.parameters.iter().enumerate() {
        let ci = interval(problem, result, i);
        let mut entry = json!({
            "estimate": result.estimate[i],
            "se": finite(result.se[i]),
            "ci95": [finite(ci[0]), finite(ci[1])],
            "start": problem.start[i],
            "bounds": [finite(p.lower), finite(p.upper)],
        });
        if let Some((sd, ci)) = bootstrap_summary(result, i) {
            entry["bootstrap"] = json!({"sd": sd, "ci95": ci, "refits": result.bootstrap.len()});
        }
        parameters.insert(p.key.clone(), entry);
    }
    let k = keys.len();
    let correlation: Vec<Vec<Value>> = (0..k)
        .map(|i| (0..k).map(|j| finite(result.correlation[(i, j)])).collect())
        .collect();
    json!({
        "scenario": problem.base.name,
        "data": observed.file,
        "seed": problem.base.simulation.seed,
        "replications_per_evaluation": replications,
        "replications_for_standard_errors": precision_replications,
        "population": problem.base.market.population,
        "days": problem.base.simulation.days,
        "method": "simulated moments on common random numbers; Nelder-Mead (argmin) from several starts, two stages of weights; sandwich standard errors (1 + 1/R)·A⁻¹BA⁻¹ with the weights, the Jacobian and Ω from the replications for standard errors",
        "parameters": parameters,
        "keys": keys,
        "correlation": correlation,
        "unidentified": result.unidentified,
        "inert": result.inert,
        "fit": result.fits,
        "objective": result.objective,
        "cells": observed.len(),
        "searches": result.runs,
        "settings": {"starts": settings.starts, "max_iterations": settings.max_iterations, "bootstrap": settings.bootstrap},
        "evaluations": {"simulated": result.simulated_evaluations, "cached": result.cached_evaluations, "from_journal": resumed},
        "seconds": seconds,
    })
}

/// `calibration.csv`: one row per day: `day`, then per observed series `<s>`
/// (observed, empty where missing), `<s>_mean`, `<s>_p05`, `<s>_p95` at the answer.
fn series_csv(observed: &Observed, result: &CalibrationResult) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["day".to_string()];
    for s in &observed.series {
        header.extend([
            s.name.to_string(),
            format!("{}_mean", s.name),
            format!("{}_p05", s.name),
            format!("{}_p95", s.name),
        ]);
    }
    writer.write_record(&header).expect("write to memory");
    let days = result.bands.first().map_or(0, Vec::len);
    for day in 0..days {
        let mut row = vec![day.to_string()];
        for (s, bands) in observed.series.iter().zip(&result.bands) {
            let y = s
                .cells
                .iter()
                .find(|c| c.0 == day)
                .map_or(String::new(), |c| c.1.to_string());
            let (mean, low, high) = bands[day];
            row.extend([y, mean.to_string(), low.to_string(), high.to_string()]);
        }
        writer.write_record(&row).expect("write to memory");
    }
    writer.into_inner().expect("write to memory")
}

/// What `calibrate` prints: each fitted value with its interval, the correlations,
/// the fit per series and the work done.
fn answer_table(
    problem: &Problem,
    observed: &Observed,
    result: &CalibrationResult,
    (replications, precision_replications): (u32, u32),
    seconds: f64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: calibrated {} value{} to {} series ({} observed cells) of {}; {} replications per evaluation, {} for the weights and standard errors, seed {} (common random numbers)",
        problem.base.name,
        problem.parameters.len(),
        if problem.parameters.len() == 1 {
            ""
        } else {
            "s"
        },
        observed.series.len(),
        observed.len(),
        observed.file,
        replications,
        precision_replications,
        problem.base.simulation.seed
    );
    let bootstrapped = !result.bootstrap.is_empty();
    let _ = writeln!(
        out,
        "{:<36} {:>10} {:>12} {:>10}   95% interval{}",
        "parameter",
        "start",
        "estimate",
        "se",
        if bootstrapped {
            "            bootstrap sd, 95% interval"
        } else {
            ""
        }
    );
    for (i, p) in problem.parameters.iter().enumerate() {
        let (x, se) = (result.estimate[i], result.se[i]);
        let interval = if se.is_finite() {
            let ci = interval(problem, result, i);
            format!("[{}, {}]", report::number(ci[0]), report::number(ci[1]))
        } else {
            "n/a (not identifiable)".to_string()
        };
        let boot = bootstrap_summary(result, i).map_or(String::new(), |(sd, ci)| {
            format!(
                "   {}, [{}, {}]",
                report::number(sd),
                report::number(ci[0]),
                report::number(ci[1])
            )
        });
        let _ = writeln!(
            out,
            "{:<36} {:>10} {:>12} {:>10}   {interval:<24}{boot}",
            p.key,
            report::number(problem.start[i]),
            report::number(x),
            report::number(se)
        );
    }
    let k = problem.parameters.len();
    if k > 1 {
        let _ = writeln!(out, "correlations of the estimates:");
        for i in 0..k {
            for j in 0..i {
                let _ = writeln!(
                    out,
                    "  {} ~ {}: {}",
                    problem.parameters[j].key,
                    problem.parameters[i].key,
                    report::number(result.correlation[(i, j)])
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "fit at the answer (RMSE of observed vs simulated mean):"
    );
    for fit in &result.fits {
        let _ = writeln!(
            out,
            "  {:<16} RMSE {} over {} days (observed mean {})",
            fit.series,
            report::number(fit.rmse),
            fit.cells,
            report::number(fit.observed_mean)
        );
    }
    let _ = writeln!(
        out,
        "objective {:.2} over {} cells; {} evaluations simulated ({} more points found in the cache) in {:.1} s",
        result.objective,
        observed.len(),
        result.simulated_evaluations,
        result.cached_evaluations,
        seconds
    );
    out
}
