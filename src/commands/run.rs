//! `brandsim run FILE`: a Monte Carlo study of one scenario, saved replication by
//! replication in its study directory (`--shard K/N` runs one shard of it,
//! `--resume DIR` continues an interrupted one), or run in batches until a
//! precision target is met (`--precision REL`).

use std::path::Path;
use std::sync::Arc;

use super::study_dir::{
    interrupt_flag, open_study, print_study, process_throughput, run_stored, write_study_outputs,
};
use super::{
    CliError, Reuse, check_output_dir, create_output_dir, load_scenario, lock_output, metric_name,
    plan_study, progress_bar, write_output,
};
use crate::cli::{PlotArgs, PrecisionArgs, StudyArgs};
use crate::outcome::Outcome;
use crate::plots;
use crate::precision::{PreciseRun, PrecisionTarget, run_until_precise};
use crate::report::{self, Throughput};
use crate::scenario::{Scenario, ScenarioSource};
use crate::shard::Shard;
use crate::study::thread_pool;

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
    if let Some(target) = target {
        return run_to_precision(&scenario, &source, &target, args, plot_args);
    }
    let pool = thread_pool(args.threads);
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let plan = plan_study(
        &scenario,
        shard.replications(scenario.simulation.replications).len(),
        &pool,
    )?;
    let lock = lock_output(args, &scenario)?;
    let dir = lock.dir().to_path_buf();
    let mut store = open_study(&dir, &scenario, &source, args)?;
    let mut resume = vec![
        "brandsim".to_string(),
        "run".to_string(),
        dir.join("scenario.toml").display().to_string(),
    ];
    resume.extend(super::repeated_options(args, Some(plot_args)));
    resume.extend(["--resume".to_string(), dir.display().to_string()]);
    let stored = run_stored(
        &mut store,
        &scenario,
        &pool,
        interrupt_flag(),
        args.quiet,
        &plan,
        &super::command_line(&resume),
    )?;
    if stored.reused > 0 {
        eprintln!(
            "resumed {}: {} replications were already done, {} computed now",
            dir.display(),
            stored.reused,
            stored.computed
        );
    }

    let shard = store.meta().shard;
    if !shard.is_whole() {
        outln!(
            "shard {shard} of {}: {} of {} replications saved in {}; merge all {} shards with: brandsim merge DIR... --out DIR",
            scenario.name,
            stored.outcomes.len(),
            scenario.simulation.replications,
            dir.display(),
            shard.count
        );
        return Ok(());
    }
    let mut throughput = process_throughput(&scenario, &stored);
    let (summary, json_text) = write_study_outputs(
        &dir,
        &scenario,
        &stored.outcomes,
        &mut throughput,
        None,
        Some(plot_args),
    )?;
    super::report::write_for_study(&dir)?;
    print_study(
        &scenario,
        stored.outcomes.len(),
        &summary,
        &throughput,
        &json_text,
        args.json,
        &dir,
    )?;
    Ok(())
}

/// The plots of a whole `run` (none when `plot_args` says no plots): the fan
/// charts, and the daily value of each time-varying key that changes.
pub fn run_plots(
    scenario: &Scenario,
    outcomes: &[Outcome],
    plot_args: &PlotArgs,
) -> Result<Vec<plots::PlotFile>, CliError> {
    if plot_args.no_plots {
        return Ok(Vec::new());
    }
    let axis = time_axis(scenario);
    let mut files = plots::fan_charts(&scenario.name, outcomes, &axis, plot_args.plot_format)?;
    let changing: Vec<(String, Vec<f64>)> = crate::scenario::Timeline::new(scenario)
        .changing_keys(scenario)
        .into_iter()
        .map(|(key, values)| (key.path(scenario), values))
        .collect();
    if let Some(file) =
        plots::time_varying_values(&scenario.name, &changing, &axis, plot_args.plot_format)?
    {
        files.push(file);
    }
    Ok(files)
}

/// The time axis of the plots of `scenario`: its start date and campaign windows.
pub fn time_axis(scenario: &Scenario) -> plots::TimeAxis {
    let calendar = &scenario.calendar;
    plots::TimeAxis {
        start_date: calendar.start_date,
        windows: calendar
            .campaigns
            .iter()
            .map(|c| (c.name.clone(), c.start, c.end))
            .collect(),
    }
}

/// `run --precision`: batches of replications 0, 1, 2, ... until the target is
/// met. The study size is not known in advance, so it is neither sharded nor
/// resumable.
fn run_to_precision(
    scenario: &Arc<Scenario>,
    source: &ScenarioSource,
    target: &PrecisionTarget,
    args: &StudyArgs,
    plot_args: &PlotArgs,
) -> Result<(), CliError> {
    if args.shard.is_some() || args.resume.is_some() {
        return Err(CliError::Usage(
            "--precision decides the number of replications as it goes, so it cannot be combined with --shard or --resume".into(),
        ));
    }
    let study = format!("brandsim run --precision\n{}", source.resolved_toml());
    let pool = thread_pool(args.threads);
    plan_study(scenario, target.max_replications as usize, &pool)?;
    let lock = lock_output(args, scenario)?;
    let dir = lock.dir().to_path_buf();
    check_output_dir(&dir, &study, args.force, Reuse::Rewrite)?;
    let bar = progress_bar(
        u64::from(target.max_replications),
        "replications (cap)",
        args.quiet,
    );
    let first = scenario.simulation.replications;
    // network.json reports the graphs of the first replications (up to the
    // cap): summarised as they are built, not generated again for the outputs.
    let reported = crate::output::network::MAX_SUMMARISED_REPLICATIONS as u32;
    let first_ones: Vec<u32> = (0..target.max_replications.clamp(1, reported)).collect();
    crate::output::network::request_summaries(scenario, &first_ones);
    let precise = run_until_precise(scenario, first, target, &pool, &|_| bar.inc(1));
    bar.finish_and_clear();
    let outcomes = &precise.outcomes;

    let mut throughput = Throughput::new(
        scenario,
        outcomes.len(),
        precise.seconds,
        pool.current_num_threads(),
    );
    create_output_dir(&dir, &study, args.force, Reuse::Rewrite)?;
    write_output(&dir, "scenario.toml", source.resolved_toml().as_bytes())?;
    let precision = precision_json(target, &precise, outcomes.len());
    let (summary, json_text) = write_study_outputs(
        &dir,
        scenario,
        outcomes,
        &mut throughput,
        Some(precision),
        Some(plot_args),
    )?;
    super::report::write_for_study(&dir)?;
    if !args.json {
        out!("{}", precision_table(target, &precise, outcomes.len()));
    }
    print_study(
        scenario,
        outcomes.len(),
        &summary,
        &throughput,
        &json_text,
        args.json,
        &dir,
    )?;
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
