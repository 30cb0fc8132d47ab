//! `brandsim sweep FILE --vary KEY=...`: a grid of scenarios, every point on the
//! same replications (common random numbers), each point a study directory that
//! `--shard`, `--resume` and `merge` work on; `sweep.csv`, `sweep.json`, plots.

use std::fmt::Write as _;
use std::path::Path;

use super::study_dir::study_dir;
use super::whatif_dir::{
    WhatIfPoint, open_whatif, plan_points, point_outcomes, print_shard_done, run_whatif,
    whatif_meta,
};
use super::{CliError, load_scenario, metric_name, output_dir, write_output, write_plots};
use crate::cli::{PlotArgs, StudyArgs};
use crate::plots::{self, PlotFile, PointCi};
use crate::report::number;
use crate::scenario::Scenario;
use crate::shard::Shard;
use crate::store::WhatIf;
use crate::study::thread_pool;
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
    let axes = parse_axes(vary)?;
    let grid_size: usize = axes.iter().map(|a| a.values.len()).product();
    if grid_size > sweep::MAX_GRID_POINTS {
        return Err(CliError::Usage(format!(
            "--vary: the grid has {grid_size} points; at most {} are allowed",
            sweep::MAX_GRID_POINTS
        )));
    }
    let metrics = metric_names(metrics)?;
    let (base, source) = load_scenario(file, args)?;
    let points = sweep::grid(&source, &axes)?;
    let dir = study_dir(args, || output_dir(args, &base))?;
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
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let wanted = whatif_meta(kind, &whatif_points, shard, plot_args);
    let pool = thread_pool(args.threads);
    let plans = plan_points(&whatif_points, shard, &pool)?;
    let mut stored = open_whatif(
        &dir,
        wanted,
        &study,
        &source.resolved_toml(),
        &whatif_points,
        args,
    )?;
    let mut resume = format!("brandsim sweep {}/scenario.toml", dir.display());
    for text in vary {
        let _ = write!(resume, " --vary {text}");
    }
    for metric in &metrics {
        let _ = write!(resume, " --metric {metric}");
    }
    let _ = write!(resume, " --resume {}", dir.display());
    let filled = run_whatif(
        &mut stored,
        &whatif_points,
        &plans,
        &pool,
        args.quiet,
        &resume,
    )?;
    if !stored.meta.shard.is_whole() {
        print_shard_done(&stored, &filled);
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

    if json {
        println!("{json_text}");
    } else {
        print!("{}", sweep_table(base, axes, summaries, metrics));
        println!(
            "{} grid points x {} replications (common random numbers) in {seconds:.2} s",
            summaries.len(),
            base.simulation.replications
        );
        if axes.len() > 2 && !plot_args.no_plots {
            println!("no plots: they are drawn for one or two varied keys");
        }
        println!("wrote {}", dir.display());
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

/// A varied value for the table: a campaign's `start` or `end` with its date
/// when the scenario has a start date (`151 (2026-06-01)`), else the number.
fn axis_value(base: &crate::scenario::Scenario, key: &str, value: f64) -> String {
    let is_day =
        key.starts_with("campaigns.") && (key.ends_with(".start") || key.ends_with(".end"));
    match base.calendar.date_text(value as u32) {
        Some(date) if is_day && value >= 0.0 && value.fract() == 0.0 => {
            format!("{} ({date})", number(value))
        }
        _ => number(value),
    }
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
        "{name}: sweep of {} on {replications} replications each (mean [95% CI])",
        axes.iter()
            .map(|a| a.key.as_str())
            .collect::<Vec<_>>()
            .join(" x ")
    );
    let widths: Vec<usize> = axes.iter().map(|a| a.key.chars().count().max(10)).collect();
    let mut header = String::new();
    for (axis, width) in axes.iter().zip(&widths) {
        let _ = write!(header, "{:>width$} ", axis.key);
    }
    for metric in metrics {
        let _ = write!(header, "{metric:>36} ");
    }
    let _ = writeln!(out, "{}", header.trim_end());
    for point in summaries {
        let mut row = String::new();
        for ((value, width), axis) in point.values.iter().zip(&widths).zip(axes) {
            let _ = write!(row, "{:>width$} ", axis_value(base, &axis.key, *value));
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
