//! `brandsim sweep FILE --vary KEY=...`: a grid of scenarios, every point on the
//! same replications (common random numbers); `sweep.csv`, `sweep.json`, plots.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use super::{
    CliError, create_output_dir, load_scenario, metric_name, output_dir, progress_bar,
    write_output, write_plots,
};
use crate::cli::{PlotArgs, StudyArgs};
use crate::plots::{self, PlotFile, PointCi};
use crate::report::number;
use crate::study::{run_replications, thread_pool};
use crate::sweep::{self, Axis, PointSummary};

/// Metrics plotted when `--metric` is not given.
const DEFAULT_METRICS: [&str; 4] = ["profit", "revenue", "active_payers", "registrations"];

/// Entry point of `brandsim sweep`.
pub fn run(
    file: &Path,
    vary: &[String],
    metrics: &[String],
    args: &StudyArgs,
    plot_args: &PlotArgs,
) -> Result<(), CliError> {
    super::refuse_store_options("sweep", args)?;
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
    let grid_size: usize = axes.iter().map(|a| a.values.len()).product();
    if grid_size > sweep::MAX_GRID_POINTS {
        return Err(CliError::Usage(format!(
            "--vary: the grid has {grid_size} points; at most {} are allowed",
            sweep::MAX_GRID_POINTS
        )));
    }
    let metrics: Vec<&'static str> = if metrics.is_empty() {
        DEFAULT_METRICS.to_vec()
    } else {
        metrics
            .iter()
            .map(|m| metric_name("--metric", m))
            .collect::<Result<_, _>>()?
    };
    let (base, source) = load_scenario(file, args)?;
    let points = sweep::grid(&source, &axes)?;
    let dir = output_dir(args, &base);
    let study = super::study_identity("sweep", &format!("{vary:?} {metrics:?}"), &source);
    super::check_output_dir(&dir, &study, args.force)?;

    let pool = thread_pool(args.threads);
    let total: u64 = points
        .iter()
        .map(|p| u64::from(p.scenario.simulation.replications))
        .sum();
    let bar = progress_bar(total, "replications", args.quiet);
    let start = Instant::now();
    let numbers: Vec<Vec<f64>> = axes.iter().map(Axis::numbers).collect();
    let summaries: Vec<PointSummary> = points
        .iter()
        .map(|point| {
            // Replications 0..R-1 of the same seed at every point.
            let replications: Vec<u32> = (0..point.scenario.simulation.replications).collect();
            let run = run_replications(&point.scenario, &replications, &pool, &|_| bar.inc(1));
            let values = point
                .indices
                .iter()
                .zip(&numbers)
                .map(|(&i, values)| values[i])
                .collect();
            sweep::summarize_point(values, &run.outcomes)
        })
        .collect();
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();

    let plot_files = if plot_args.no_plots {
        Vec::new()
    } else {
        sweep_plots(&base.name, &axes, &summaries, &metrics, plot_args)?
    };
    let json = sweep::sweep_json(&base, &axes, &summaries);
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");
    create_output_dir(&dir, &study, args.force)?;
    write_output(&dir, "scenario.toml", source.resolved_toml().as_bytes())?;
    write_output(&dir, "sweep.csv", &sweep::sweep_csv(&axes, &summaries))?;
    write_output(&dir, "sweep.json", json_text.as_bytes())?;
    write_plots(&dir, &plot_files)?;

    if args.json {
        println!("{json_text}");
    } else {
        print!("{}", sweep_table(&base.name, &axes, &summaries, &metrics));
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

/// One row per grid point: the varied values, then each metric's mean and 95% CI.
fn sweep_table(name: &str, axes: &[Axis], summaries: &[PointSummary], metrics: &[&str]) -> String {
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
        for (value, width) in point.values.iter().zip(&widths) {
            let _ = write!(row, "{:>width$} ", number(*value));
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
