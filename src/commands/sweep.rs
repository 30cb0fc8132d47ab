//! `brandsim sweep FILE --vary KEY=...`: a grid of scenarios, every point on the
//! same replications (common random numbers), each point a study directory that
//! `--shard`, `--resume` and `merge` work on; `sweep.csv`, `sweep.json`, plots.

use std::fmt::Write as _;
use std::path::Path;

use super::whatif_dir::{
    StartedWhatIf, WhatIfPoint, point_outcomes, print_shard_done, run_whatif, start_whatif,
};
use super::{CliError, load_scenario, metric_name, write_output, write_plots};
use crate::cli::{PlotArgs, StudyArgs};
use crate::plots::{self, PlotFile, PointCi};
use crate::report::{number, table_text};
use crate::scenario::Scenario;
use crate::store::WhatIf;
use crate::sweep::{self, Axis, PointSummary};

/// Metrics plotted when `--metric` is not given.
const DEFAULT_METRICS: [&str; 4] = ["profit", "revenue", "active_payers", "registrations"];

/// Entry point of `brandsim sweep`: each grid point is a study directory of its
/// own (`OUT/points/<i>/`), so a sweep can be sharded, interrupted and resumed.
pub fn run(
    file: &Path,
    vary: &[String],
    metrics: &[String],
    args: &StudyArgs,
    plot_args: &PlotArgs,
) -> Result<(), CliError> {
    let (base, source) = load_scenario(file, args)?;
    let as_days = dates_as_days(vary, &base)?;
    let axes = parse_axes(&as_days).map_err(|error| with_dates(error, vary, &as_days, &base))?;
    let vary = &as_days;
    let grid_size: usize = axes.iter().map(|a| a.values.len()).product();
    if grid_size > sweep::MAX_GRID_POINTS {
        return Err(CliError::Usage(format!(
            "--vary: the grid has {grid_size} points; at most {} are allowed",
            sweep::MAX_GRID_POINTS
        )));
    }
    let metrics = metric_names(metrics)?;
    let points = sweep::grid(&source, &axes)?;
    let study = super::study_identity("sweep", &format!("{vary:?} {metrics:?}"), &source);

    let whatif_points: Vec<WhatIfPoint> = points
        .iter()
        .map(|point| WhatIfPoint {
            scenario: &point.scenario,
            source: &point.source,
            replications: point.scenario.simulation.replications,
        })
        .collect();
    let kind = WhatIf::Sweep {
        vary: vary.to_vec(),
        metrics: metrics.iter().map(|m| m.to_string()).collect(),
    };
    let StartedWhatIf {
        lock,
        study: mut stored,
        plans,
        pool,
    } = start_whatif(
        kind,
        &whatif_points,
        &base,
        &source.resolved_toml(),
        &study,
        args,
        plot_args,
    )?;
    let dir = lock.dir().to_path_buf();
    let mut words = vec![
        "brandsim".to_string(),
        "sweep".to_string(),
        dir.join("scenario.toml").display().to_string(),
    ];
    for text in vary {
        words.extend(["--vary".to_string(), text.clone()]);
    }
    for metric in &metrics {
        words.extend(["--metric".to_string(), metric.to_string()]);
    }
    words.extend(super::repeated_options(args, Some(plot_args)));
    words.extend(["--resume".to_string(), dir.display().to_string()]);
    let resume = super::command_line(&words);
    let filled = run_whatif(
        &mut stored,
        &whatif_points,
        &plans,
        &pool,
        args.quiet,
        &resume,
    )?;
    if !stored.meta.shard.is_whole() {
        print_shard_done(&stored, &filled)?;
        return Ok(());
    }

    let summaries = points
        .iter()
        .enumerate()
        .map(|(i, point)| {
            let outcomes = point_outcomes(&stored, i)?;
            let values = sweep::point_values(&axes, &point.indices);
            Ok(sweep::summarize_point(values, &outcomes))
        })
        .collect::<Result<Vec<PointSummary>, CliError>>()?;
    let results = SweepResults {
        base: &base,
        axes: &axes,
        metrics: &metrics,
        summaries,
        seconds: stored.seconds(),
    };
    write_sweep_outputs(&dir, &results, plot_args, args.json)
}

/// `--vary` texts with every date of a campaign's `start` or `end` (or a
/// seeding's `day`)
/// (`campaigns.sale.start=2026-05-01:2026-08-01:7`, or a list of dates) written as
/// its day number from the scenario's `simulation.start_date` (MODEL.md v2,
/// "Days"); the step stays in days. Other texts are returned unchanged. Errors: a
/// date without a `start_date`, or before it.
pub fn dates_as_days(vary: &[String], base: &Scenario) -> Result<Vec<String>, CliError> {
    vary.iter()
        .map(|text| {
            let Some((key, spec)) = text.split_once('=') else {
                return Ok(text.clone());
            };
            let key = key.trim();
            let is_day = (key.starts_with("campaigns.")
                && (key.ends_with(".start") || key.ends_with(".end")))
                || (key.starts_with("seeding.") && key.ends_with(".day"));
            if !is_day {
                return Ok(text.clone());
            }
            let mut converted = String::new();
            let mut part = String::new();
            let flush = |part: &mut String, out: &mut String| -> Result<(), CliError> {
                let trimmed = part.trim();
                match chrono::NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
                    Ok(date) => {
                        let Some(start) = base.calendar.start_date else {
                            return Err(CliError::Usage(format!(
                                "--vary {text}: {trimmed} is a date, but the scenario has no \
                                 simulation.start_date; give day numbers or set a start date"
                            )));
                        };
                        let day = (date - start).num_days();
                        if day < 0 {
                            return Err(CliError::Usage(format!(
                                "--vary {text}: {trimmed} is before simulation.start_date {start}"
                            )));
                        }
                        out.push_str(&day.to_string());
                    }
                    Err(_) => out.push_str(part),
                }
                part.clear();
                Ok(())
            };
            for c in spec.chars() {
                if c == ':' || c == ',' {
                    flush(&mut part, &mut converted)?;
                    converted.push(c);
                } else {
                    part.push(c);
                }
            }
            flush(&mut part, &mut converted)?;
            Ok(format!("{key}={converted}"))
        })
        .collect()
}

/// `error` of parsing `--vary` texts whose dates [`dates_as_days`] turned into
/// day numbers (`as_days`): the message, which speaks of day numbers, gets the
/// text as the user wrote it and the dates of the days it names.
fn with_dates(error: CliError, vary: &[String], as_days: &[String], base: &Scenario) -> CliError {
    let CliError::Usage(message) = error else {
        return error;
    };
    let mut notes = Vec::new();
    let spec = |text: &str| -> Vec<String> {
        text.split_once('=')
            .map_or("", |(_, spec)| spec)
            .split([':', ','])
            .map(|part| part.trim().to_string())
            .collect()
    };
    for (written, days) in vary.iter().zip(as_days).filter(|(w, d)| w != d) {
        let dates: Vec<String> = spec(written)
            .into_iter()
            .zip(spec(days))
            .filter(|(w, d)| w != d)
            .map(|(w, d)| format!("{w} is day {d}"))
            .collect();
        let start = base
            .calendar
            .start_date
            .map_or(String::new(), |date| format!(" {date}"));
        notes.push(format!(
            "--vary \"{written}\" counts its dates as days from simulation.start_date{start} ({}; day n is n days after it)",
            dates.join(", ")
        ));
    }
    if notes.is_empty() {
        return CliError::Usage(message);
    }
    CliError::Usage(format!("{message}\n  note: {}", notes.join("\n  note: ")))
}

/// The `--vary` axes, checked: each key varied once.
pub fn parse_axes(vary: &[String]) -> Result<Vec<Axis>, CliError> {
    let axes = vary
        .iter()
        .map(|text| sweep::parse_vary(text).map_err(|e| CliError::Usage(e.to_string())))
        .collect::<Result<Vec<Axis>, _>>()?;
    for (i, axis) in axes.iter().enumerate() {
        if axes[..i].iter().any(|other| other.key == axis.key) {
            return Err(CliError::Usage(format!(
                "--vary {}: the key is varied twice; give all its values in one --vary",
                axis.key
            )));
        }
    }
    Ok(axes)
}

/// The plotted metrics: `--metric`, or the default ones.
pub fn metric_names(metrics: &[String]) -> Result<Vec<&'static str>, CliError> {
    if metrics.is_empty() {
        return Ok(DEFAULT_METRICS.to_vec());
    }
    metrics.iter().map(|m| metric_name("--metric", m)).collect()
}

/// What the outputs of a whole sweep are made from.
pub struct SweepResults<'a> {
    pub base: &'a Scenario,
    pub axes: &'a [Axis],
    pub metrics: &'a [&'static str],
    /// One per grid point, in grid order.
    pub summaries: Vec<PointSummary>,
    /// Wall time spent on the replications.
    pub seconds: f64,
}

/// Writes `sweep.csv`, `sweep.json` and the plots of a whole sweep into `dir`
/// and prints it (by `sweep`, and by `merge` from a sweep's shards).
pub fn write_sweep_outputs(
    dir: &Path,
    results: &SweepResults,
    plot_args: &PlotArgs,
    json: bool,
) -> Result<(), CliError> {
    let SweepResults {
        base,
        axes,
        metrics,
        summaries,
        seconds,
    } = results;
    let plot_files = if plot_args.no_plots {
        Vec::new()
    } else {
        sweep_plots(&base.name, axes, summaries, metrics, plot_args)?
    };
    let json_value = sweep::sweep_json(base, axes, summaries);
    let json_text = serde_json::to_string_pretty(&json_value).expect("plain JSON");
    write_output(dir, "sweep.csv", &sweep::sweep_csv(axes, summaries))?;
    write_output(dir, "sweep.json", json_text.as_bytes())?;
    write_plots(dir, &plot_files)?;
    super::report::write_for_study(dir)?;

    if json {
        outln!("{json_text}");
    } else {
        out!("{}", sweep_table(base, axes, summaries, metrics));
        outln!(
            "{} grid points x {} replications (common random numbers) in {seconds:.2} s",
            summaries.len(),
            base.simulation.replications
        );
        if axes.len() > 2 && !plot_args.no_plots {
            outln!("no plots: they are drawn for one or two varied keys");
        }
        outln!("wrote {}", dir.display());
    }
    Ok(())
}

/// Line plots (one varied key) or heat maps (two) of each metric.
fn sweep_plots(
    name: &str,
    axes: &[Axis],
    summaries: &[PointSummary],
    metrics: &[&str],
    plot_args: &PlotArgs,
) -> Result<Vec<PlotFile>, CliError> {
    let format = plot_args.plot_format;
    let replications = summaries.first().map_or(0, |p| p.replications);
    let mut files = Vec::new();
    for &metric in metrics {
        match axes {
            [axis] => {
                let points: Vec<PointCi> = summaries
                    .iter()
                    .filter_map(|p| {
                        let s = p.metric(metric)?;
                        Some(PointCi {
                            x: p.values[0],
                            mean: s.mean,
                            ci95: s.ci95,
                        })
                    })
                    .collect();
                files.push(plots::sweep_line(
                    name,
                    &axis.key,
                    metric,
                    replications,
                    &points,
                    format,
                )?);
            }
            [x, y] => {
                let (xs, ys) = (x.numbers(), y.numbers());
                // The first axis varies slowest: point i * |y| + j.
                let means: Vec<Vec<f64>> = (0..xs.len())
                    .map(|i| {
                        (0..ys.len())
                            .map(|j| {
                                summaries[i * ys.len() + j]
                                    .metric(metric)
                                    .map_or(f64::NAN, |s| s.mean)
                            })
                            .collect()
                    })
                    .collect();
                files.push(plots::sweep_heat_map(
                    name,
                    (&x.key, &xs),
                    (&y.key, &ys),
                    metric,
                    replications,
                    &means,
                    format,
                )?);
            }
            _ => {}
        }
    }
    Ok(files)
}

/// The labels of an axis's values in the table: each as `number` shows it when
/// that reads back to the value, else its shortest exact decimal (`0.00005`,
/// `0.0000000001`), so that every grid value is told apart; a campaign's
/// `start` or `end` (or a seeding's `day`) with its date when the scenario has
/// a start date (`151 (2026-06-01)`).
fn grid_labels(base: &crate::scenario::Scenario, key: &str, values: &[f64]) -> Vec<String> {
    let is_day = (key.starts_with("campaigns.")
        && (key.ends_with(".start") || key.ends_with(".end")))
        || (key.starts_with("seeding.") && key.ends_with(".day"));
    values
        .iter()
        .map(|&v| {
            let short = number(v);
            let label = if short.parse::<f64>().is_ok_and(|back| back == v) {
                short
            } else {
                format!("{v}")
            };
            match base.calendar.date_text(v as u32) {
                Some(date) if is_day && v >= 0.0 && v.fract() == 0.0 => format!("{label} ({date})"),
                _ => label,
            }
        })
        .collect()
}

/// One row per grid point: the varied values, then each metric's mean and 95% CI.
fn sweep_table(
    base: &crate::scenario::Scenario,
    axes: &[Axis],
    summaries: &[PointSummary],
    metrics: &[&str],
) -> String {
    let name = &base.name;
    let mut out = String::new();
    let replications = summaries.first().map_or(0, |p| p.replications);
    let _ = writeln!(
        out,
        "{}: sweep of {} on {replications} replications each (mean [95% CI])",
        table_text(name),
        axes.iter()
            .map(|a| table_text(&a.key))
            .collect::<Vec<_>>()
            .join(" x ")
    );
    let numbers: Vec<Vec<f64>> = axes.iter().map(Axis::numbers).collect();
    let labels: Vec<Vec<String>> = axes
        .iter()
        .zip(&numbers)
        .map(|(axis, values)| grid_labels(base, &axis.key, values))
        .collect();
    let widths: Vec<usize> = axes
        .iter()
        .zip(&labels)
        .map(|(a, labels)| {
            let longest = labels.iter().map(String::len).max().unwrap_or(0);
            table_text(&a.key).chars().count().max(10).max(longest)
        })
        .collect();
    let mut header = String::new();
    for (axis, width) in axes.iter().zip(&widths) {
        let _ = write!(header, "{:>width$} ", table_text(&axis.key));
    }
    for metric in metrics {
        let _ = write!(header, "{metric:>36} ");
    }
    let _ = writeln!(out, "{}", header.trim_end());
    for point in summaries {
        let mut row = String::new();
        for (a, (value, width)) in point.values.iter().zip(&widths).enumerate() {
            let label = numbers[a]
                .iter()
                .position(|n| n == value)
                .map_or_else(|| format!("{value}"), |i| labels[a][i].clone());
            let _ = write!(row, "{label:>width$} ");
        }
        for metric in metrics {
            let cell = point.metric(metric).map_or("n/a".to_string(), |s| {
                if s.ci95[0].is_nan() {
                    number(s.mean)
                } else {
                    format!(
                        "{} [{}, {}]",
                        number(s.mean),
                        number(s.ci95[0]),
                        number(s.ci95[1])
                    )
                }
            });
            let _ = write!(row, "{cell:>36} ");
        }
        let _ = writeln!(out, "{}", row.trim_end());
    }
    out
}
