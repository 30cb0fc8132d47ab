//! `brandsim run FILE`: a Monte Carlo study of one scenario.

use std::path::Path;
use std::sync::Arc;

use super::{
    CliError, create_output_dir, load_scenario, metric_name, output_dir, progress_bar,
    write_output, write_plots,
};
use crate::cli::{PlotArgs, PrecisionArgs, StudyArgs};
use crate::plots;
use crate::precision::{PreciseRun, PrecisionTarget, run_until_precise};
use crate::report::{self, Throughput};
use crate::study::{StudyRun, run_replications, summarize_study, thread_pool};

/// Entry point of `brandsim run`.
pub fn run(
    file: &Path,
    args: &StudyArgs,
    precision: &PrecisionArgs,
    plot_args: &PlotArgs,
) -> Result<(), CliError> {
    let target = precision_target(precision)?;
    let (scenario, source) = load_scenario(file, args)?;
    let scenario = Arc::new(scenario);
    let dir = output_dir(args, &scenario);
    let pool = thread_pool(args.threads);
    let (study, precise) = match &target {
        None => {
            let replications: Vec<u32> = (0..scenario.simulation.replications).collect();
            let bar = progress_bar(replications.len() as u64, "replications", args.quiet);
            let study = run_replications(&scenario, &replications, &pool, &|_| bar.inc(1));
            bar.finish_and_clear();
            (study, None)
        }
        Some(target) => {
            let bar = progress_bar(
                u64::from(target.max_replications),
                "replications (cap)",
                args.quiet,
            );
            let first = scenario.simulation.replications;
            let mut precise = run_until_precise(&scenario, first, target, &pool, &|_| bar.inc(1));
            bar.finish_and_clear();
            let study = StudyRun {
                outcomes: std::mem::take(&mut precise.outcomes),
                seconds: precise.seconds,
            };
            (study, Some(precise))
        }
    };

    let summary = summarize_study(&study.outcomes);
    let throughput = Throughput::new(
        &scenario,
        study.outcomes.len(),
        study.seconds,
        pool.current_num_threads(),
    );
    let mut json = report::summary_json(&scenario, study.outcomes.len(), &summary, &throughput);
    if let (Some(target), Some(precise)) = (&target, &precise) {
        json["precision"] = precision_json(target, precise, study.outcomes.len());
    }
    let plot_files = if plot_args.no_plots {
        Vec::new()
    } else {
        plots::fan_charts(&scenario.name, &study.outcomes, plot_args.plot_format)?
    };
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");
    create_output_dir(&dir)?;
    write_output(&dir, "scenario.toml", source.resolved_toml().as_bytes())?;
    write_output(
        &dir,
        "replications.csv",
        &report::replications_csv(&study.outcomes),
    )?;
    write_output(&dir, "daily.csv", &report::daily_csv(&summary))?;
    write_output(&dir, "summary.json", json_text.as_bytes())?;
    write_plots(&dir, &plot_files)?;

    if args.json {
        println!("{json_text}");
    } else {
        print!(
            "{}",
            report::metrics_table(&scenario, study.outcomes.len(), &summary)
        );
        if let (Some(target), Some(precise)) = (&target, &precise) {
            print!("{}", precision_table(target, precise, study.outcomes.len()));
        }
        println!(
            "throughput: {:.3e} user-days in {:.2} s = {:.3e} user-days/s on {} threads; peak memory {}",
            throughput.user_days,
            throughput.seconds,
            throughput.user_days_per_second(),
            throughput.threads,
            throughput
                .peak_memory_bytes
                .map_or("n/a".into(), |b| format!(
                    "{:.1} MiB ({:.1} bytes/user)",
                    b as f64 / 1048576.0,
                    b as f64 / f64::from(scenario.market.population)
                ))
        );
        println!("wrote {}", dir.display());
    }
    Ok(())
}

/// The `--precision` target, checked, or `None` without `--precision`.
fn precision_target(args: &PrecisionArgs) -> Result<Option<PrecisionTarget>, CliError> {
    let Some(relative) = args.precision else {
        if !args.metrics.is_empty() {
            return Err(CliError::Usage(
                "--metric is for --precision here; add --precision REL".to_string(),
            ));
        }
        return Ok(None);
    };
    if !(relative.is_finite() && relative > 0.0) {
        return Err(CliError::Usage(format!(
            "--precision {relative}: expected a relative CI half-width > 0, like 0.01"
        )));
    }
    if args.max_replications < 2 {
        return Err(CliError::Usage(format!(
            "--max-replications {}: expected at least 2",
            args.max_replications
        )));
    }
    let metrics = if args.metrics.is_empty() {
        vec!["registrations", "active_payers", "revenue"]
    } else {
        args.metrics
            .iter()
            .map(|m| metric_name("--metric", m))
            .collect::<Result<_, _>>()?
    };
    Ok(Some(PrecisionTarget {
        relative,
        metrics: metrics.into_iter().map(str::to_string).collect(),
        max_replications: args.max_replications,
    }))
}

/// `precision` of `summary.json`: the target and how many replications reached it.
fn precision_json(
    target: &PrecisionTarget,
    precise: &PreciseRun,
    replications: usize,
) -> serde_json::Value {
    serde_json::json!({
        "relative": target.relative,
        "max_replications": target.max_replications,
        "replications": replications,
        "batches": precise.batches,
        "reached": precise.reached,
        "metrics": precise.precision,
    })
}

/// The lines printed under the metrics table with `--precision`.
fn precision_table(target: &PrecisionTarget, precise: &PreciseRun, replications: usize) -> String {
    let mut out = format!(
        "precision: {} after {} replications in {} batches (target: 95% CI half-width < {} x |mean|, cap {})\n",
        if precise.reached {
            "reached"
        } else {
            "NOT reached"
        },
        replications,
        precise.batches,
        target.relative,
        target.max_replications
    );
    for p in &precise.precision {
        out.push_str(&format!(
            "  {:<18} half-width {} = {:.4} x |mean| {}\n",
            p.metric,
            report::number(p.half_width),
            p.relative_half_width,
            if p.reached { "ok" } else { "above target" }
        ));
    }
    out
}
