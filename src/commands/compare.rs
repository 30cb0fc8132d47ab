//! `brandsim compare FILE [FILE2...]`: the base scenario, its `[[variants]]` and
//! any further files, all on the same replications; paired differences from the
//! base, the ranking by one metric, `compare.csv`, `compare.json` and a bar chart.
//! Each arm is a study directory that `--shard`, `--resume` and `merge` work on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::whatif_dir::{
    StartedWhatIf, WhatIfPoint, point_outcomes, print_shard_done, run_whatif, start_whatif,
};
use super::{CliError, assignments, load_scenario, metric_name, write_output, write_plots};
use crate::cli::{PlotArgs, StudyArgs};
use crate::compare::{self, Arm, Comparison};
use crate::outcome::Outcome;
use crate::plots::{self, DifferenceBar};
use crate::report::{number, table_text};
use crate::scenario::{self, Assignment, Scenario, ScenarioSource};
use crate::store::WhatIf;

/// Entry point of `brandsim compare`: each arm is a study directory of its own
/// (`OUT/arms/<i>/`), so a comparison can be sharded, interrupted and resumed.
pub fn run(
    files: &[PathBuf],
    metric: &str,
    args: &StudyArgs,
    plot_args: &PlotArgs,
) -> Result<(), CliError> {
    let metric = metric_name("--metric", metric)?;
    let (arms, sources, first_source) = load_arms(files, args)?;
    let base = arms[0].scenario.clone();
    let arms_text: Vec<String> = sources.iter().map(|s| s.resolved_toml()).collect();
    let study = super::study_identity(
        "compare",
        &format!("{metric}\n{}", arms_text.join("\n")),
        &first_source,
    );

    // Every arm runs replications 0..R-1 of the base's seed: common random numbers.
    let points: Vec<WhatIfPoint> = arms
        .iter()
        .zip(&sources)
        .map(|(arm, source)| WhatIfPoint {
            scenario: &arm.scenario,
            source,
            replications: base.simulation.replications,
        })
        .collect();
    let names: Vec<String> = arms.iter().map(|arm| arm.name.clone()).collect();
    let kind = WhatIf::Compare {
        metric: metric.to_string(),
        arms: names.clone(),
    };
    let StartedWhatIf {
        lock,
        study: mut stored,
        plans,
        pool,
    } = start_whatif(
        kind,
        &points,
        &base,
        &first_source.resolved_toml(),
        &study,
        args,
        plot_args,
    )?;
    let dir = lock.dir().to_path_buf();
    // One file: its stored base scenario holds the variants, --set and all.
    // Several: the files again, with the options that resolved them.
    let mut words = vec!["brandsim".to_string(), "compare".to_string()];
    if files.len() == 1 {
        words.push(dir.join("scenario.toml").display().to_string());
    } else {
        words.extend(files.iter().map(|f| f.display().to_string()));
        words.extend(super::scenario_options(args));
    }
    words.extend(["--metric".to_string(), metric.to_string()]);
    words.extend(super::repeated_options(args, Some(plot_args)));
    words.extend(["--resume".to_string(), dir.display().to_string()]);
    let resume = super::command_line(&words);
    let filled = run_whatif(&mut stored, &points, &plans, &pool, args.quiet, &resume)?;
    if !stored.meta.shard.is_whole() {
        print_shard_done(&stored, &filled)?;
        return Ok(());
    }
    let outcomes = (0..arms.len())
        .map(|i| point_outcomes(&stored, i))
        .collect::<Result<Vec<_>, _>>()?;
    let results = CompareResults {
        base: &base,
        names: &names,
        outcomes: &outcomes,
        arm_tomls: &arms_text,
        metric,
        seconds: stored.seconds(),
    };
    write_compare_outputs(&dir, &results, plot_args, args.json)
}

/// What the outputs of a whole comparison are made from.
pub struct CompareResults<'a> {
    pub base: &'a Scenario,
    /// The arms' names, the base first.
    pub names: &'a [String],
    /// `outcomes[arm]`: replications 0..R-1 of the arm, in order.
    pub outcomes: &'a [Vec<Outcome>],
    /// Each arm's resolved scenario.
    pub arm_tomls: &'a [String],
    /// The ranking metric.
    pub metric: &'a str,
    /// Wall time spent on the replications.
    pub seconds: f64,
}

/// Writes `compare.csv`, `compare.json`, `arm-<i>.toml` and the bar chart of a
/// whole comparison into `dir` and prints it (by `compare`, and by `merge` from
/// a comparison's shards).
pub fn write_compare_outputs(
    dir: &Path,
    results: &CompareResults,
    plot_args: &PlotArgs,
    json: bool,
) -> Result<(), CliError> {
    let CompareResults {
        base,
        names,
        outcomes,
        arm_tomls,
        metric,
        seconds,
    } = results;
    let comparison = compare::compare(names, outcomes);
    let replications = comparison.replications;

    let plot_files = if plot_args.no_plots {
        Vec::new()
    } else {
        let bars: Vec<DifferenceBar> = comparison.arms[1..]
            .iter()
            .filter_map(|arm| {
                let d = arm.difference(metric)?;
                Some(DifferenceBar {
                    arm: arm.name.clone(),
                    difference: d.mean,
                    ci95: d.ci95,
                })
            })
            .collect();
        vec![plots::compare_bars(
            &base.name,
            &names[0],
            metric,
            replications,
            &bars,
            plot_args.plot_format,
        )?]
    };
    let json_value = compare::compare_json(&comparison, base.simulation.seed, metric);
    let json_text = serde_json::to_string_pretty(&json_value).expect("plain JSON");
    for (i, toml) in arm_tomls.iter().enumerate() {
        write_output(dir, &format!("arm-{i}.toml"), toml.as_bytes())?;
    }
    write_output(dir, "compare.csv", &compare::compare_csv(&comparison))?;
    write_output(dir, "compare.json", json_text.as_bytes())?;
    write_plots(dir, &plot_files)?;
    super::report::write_for_study(dir)?;

    if json {
        outln!("{json_text}");
    } else {
        out!("{}", ranking_table(&comparison, base, metric));
        out!("{}", differences_table(&comparison));
        outln!(
            "{} arms x {replications} replications in {seconds:.2} s",
            names.len(),
        );
        outln!("wrote {}", dir.display());
    }
    Ok(())
}

/// The arms: each file's scenario followed by its variants, each arm's source
/// without the `[[variants]]` list, and the first file's resolved source with
/// it (stored as the comparison's `scenario.toml`, which `--resume` reads).
/// Every file after the first takes the first file's seed and replications, so
/// all arms pair up.
fn load_arms(
    files: &[PathBuf],
    args: &StudyArgs,
) -> Result<(Vec<Arm>, Vec<ScenarioSource>, ScenarioSource), CliError> {
    let mut arms: Vec<Arm> = Vec::new();
    let mut sources = Vec::new();
    let mut base: Option<Scenario> = None;
    let mut first_source: Option<ScenarioSource> = None;
    for file in files {
        let (scenario, source) = match &base {
            None => load_scenario(file, args)?,
            Some(base) => load_paired(file, args, base)?,
        };
        // Each arm is the scenario without its `[[variants]]` list: an arm
        // needs none, and carrying the list in every arm would make time, memory
        // and disk grow with the square of the number of variants.
        let mut source = source;
        let mut scenario = scenario;
        if first_source.is_none() {
            first_source = Some(source.clone());
        }
        source.document.remove("variants");
        let variant_list = std::mem::take(&mut scenario.variants);
        // Checked when the file was loaded, so applying them again succeeds.
        let variants = variant_list
            .iter()
            .map(|variant| {
                let (varied, varied_source) = source.with_overrides(&variant.set)?;
                Ok((variant.name.clone(), varied, varied_source))
            })
            .collect::<Result<Vec<_>, scenario::ScenarioError>>()?;
        if base.is_none() {
            base = Some(scenario.clone());
        }
        let name = scenario.name.clone();
        for (name, scenario, source) in std::iter::once((name, scenario, source)).chain(variants) {
            // Several files: each arm says which file it comes from.
            let label = if files.len() > 1 {
                format!("{}: {name}", file.display())
            } else {
                name
            };
            arms.push(Arm {
                name: unique_name(&arms, &label),
                scenario: Arc::new(scenario),
            });
            sources.push(source);
        }
    }
    if arms.len() < 2 {
        return Err(CliError::Usage(format!(
            "{}: nothing to compare: the scenario has no [[variants]]; add some or give more files",
            files[0].display()
        )));
    }
    let first_source = first_source.expect("at least one file");
    Ok((arms, sources, first_source))
}

/// Loads a further file with the base's seed and replication count.
fn load_paired(
    file: &Path,
    args: &StudyArgs,
    base: &Scenario,
) -> Result<(Scenario, ScenarioSource), CliError> {
    let mut overrides = assignments(file, args)?;
    overrides.push(Assignment {
        key: "simulation.seed".into(),
        value: toml::Value::Integer(base.simulation.seed as i64),
    });
    overrides.push(Assignment {
        key: "simulation.replications".into(),
        value: toml::Value::Integer(i64::from(base.simulation.replications)),
    });
    Ok(scenario::load_file(file, &overrides)?)
}

/// `name`, or `name (2)`, `name (3)`, ... if an arm already has it.
fn unique_name(arms: &[Arm], name: &str) -> String {
    let taken = |candidate: &str| arms.iter().any(|arm| arm.name == candidate);
    if !taken(name) {
        return name.to_string();
    }
    (2..)
        .map(|k| format!("{name} ({k})"))
        .find(|candidate| !taken(candidate))
        .expect("some suffix is free")
}

/// The arms ranked by `metric`, with the paired and unpaired standard errors of
/// the difference from the base.
fn ranking_table(comparison: &Comparison, base: &Scenario, metric: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} arms, each on replications 0..{} of seed {} (common random numbers); ranked by {metric}",
        table_text(&base.name),
        comparison.arms.len(),
        comparison.replications.saturating_sub(1),
        base.simulation.seed
    );
    let _ = writeln!(
        out,
        "{:>4}  {:<22} {:>12} {:>36} {:>11} {:>11} {:>9}  P(beats base) [95% CI]",
        "rank",
        "arm",
        "mean",
        "difference from base [95% CI]",
        "paired SE",
        "unpaired SE",
        "SE ratio",
    );
    for (rank, i) in comparison.ranking(metric).into_iter().enumerate() {
        let arm = &comparison.arms[i];
        let mean = arm.metric(metric).map_or(f64::NAN, |s| s.mean);
        let beats = match arm.difference(metric) {
            Some(d) if i > 0 => format!(
                "{:.3} [{:.3}, {:.3}]",
                d.p_beats_base, d.p_beats_base_ci95[0], d.p_beats_base_ci95[1]
            ),
            _ => String::new(),
        };
        let (difference, paired, unpaired, ratio) = match arm.difference(metric) {
            Some(d) if i > 0 => (
                difference_cell(d.mean, d.ci95),
                number(d.se_paired),
                number(d.se_unpaired),
                se_ratio(d.se_paired, d.se_unpaired),
            ),
            _ => (
                "(base)".to_string(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        let _ = write!(
            out,
            "{:>4}  {:<22} {:>12} {:>36} {:>11} {:>11} {:>9}",
            rank + 1,
            table_text(&arm.name),
            number(mean),
            difference,
            paired,
            unpaired,
            ratio,
        );
        if !beats.is_empty() {
            let _ = write!(out, "  {beats}");
        }
        out.push('\n');
    }
    out
}

/// The SE ratio column: `unpaired / paired`; `exact` only when the paired SE is
/// a true 0 (every replication gave the same difference) and the unpaired one is
/// not; `n/a` when either is undefined (one replication) or both are 0.
fn se_ratio(paired: f64, unpaired: f64) -> String {
    if !(paired.is_finite() && unpaired.is_finite()) || (paired == 0.0 && unpaired == 0.0) {
        "n/a".to_string()
    } else if paired == 0.0 {
        "exact".to_string()
    } else {
        format!("{:.1}x", unpaired / paired)
    }
}

fn difference_cell(mean: f64, ci95: [f64; 2]) -> String {
    if ci95[0].is_nan() {
        format!("{:+}", number(mean))
    } else {
        format!(
            "{} [{}, {}]",
            number(mean),
            number(ci95[0]),
            number(ci95[1])
        )
    }
}

/// For each arm but the base: every metric's mean and paired difference.
fn differences_table(comparison: &Comparison) -> String {
    let mut out = String::new();
    for arm in &comparison.arms[1..] {
        let _ = writeln!(
            out,
            "\n{} minus {} (paired over the same replications):",
            table_text(&arm.name),
            table_text(&comparison.arms[0].name)
        );
        let _ = writeln!(
            out,
            "{:<18} {:>14} {:>36} {:>11} {:>11}",
            "metric", "mean", "difference [95% CI]", "paired SE", "unpaired SE"
        );
        for ((metric, s), (_, d)) in arm.metrics.iter().zip(&arm.differences) {
            let _ = writeln!(
                out,
                "{:<18} {:>14} {:>36} {:>11} {:>11}",
                metric,
                number(s.mean),
                difference_cell(d.mean, d.ci95),
                number(d.se_paired),
                number(d.se_unpaired)
            );
        }
    }
    out
}
