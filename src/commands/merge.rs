//! `brandsim merge DIR... --out DIR`: the shards of a study (of `run`, `sweep` or
//! `compare`) merged into the outputs of the whole study, exactly as one process
//! would have written them.

use std::path::{Path, PathBuf};

use super::compare::{CompareResults, write_compare_outputs};
use super::study_dir::{print_study, stored_throughput, write_study_outputs};
use super::sweep::{SweepResults, metric_names, parse_axes, write_sweep_outputs};
use super::whatif_dir::stored_plot_args;
use super::{CliError, STUDY_MARKER, create_output_dir, write_output};
use crate::scenario;
use crate::shard::{Merged, merge, merge_whatif};
use crate::store::{META_FILE, SCENARIO_FILE, StudyStore, WHATIF_FILE, WhatIf, WhatIfMeta};
use crate::sweep;

/// Entry point of `brandsim merge`.
pub fn run(dirs: &[PathBuf], out: &Path, json: bool) -> Result<(), CliError> {
    if let Some(dir) = dirs.iter().find(|dir| same_dir(dir, out)) {
        return Err(CliError::Usage(format!(
            "--out {} is one of the shards ({}); merge into a new directory",
            out.display(),
            dir.display()
        )));
    }
    if WhatIfMeta::read(&dirs[0])?.is_some() {
        return merge_whatif_shards(dirs, out, json);
    }
    let merged = merge(dirs)?;
    let stored_scenario = dirs[0].join(SCENARIO_FILE);
    let scenario = scenario::parse_str(
        &merged.resolved_toml,
        &stored_scenario.display().to_string(),
    )?;

    let mut store = StudyStore::create(out, merged.meta.clone(), &merged.resolved_toml)?;
    for outcome in &merged.outcomes {
        store.save(outcome)?;
    }
    store.replace_meta(merged.meta.clone())?;
    let throughput = stored_throughput(&scenario, merged.outcomes.len(), &merged.meta.work);
    let (summary, json_text) =
        write_study_outputs(out, &scenario, &merged.outcomes, &throughput, None)?;
    if !json {
        println!(
            "merged {} shards of {}: {} replications",
            dirs.len(),
            scenario.name,
            merged.outcomes.len()
        );
    }
    print_study(
        &scenario,
        merged.outcomes.len(),
        &summary,
        &throughput,
        &json_text,
        json,
        out,
    );
    Ok(())
}

/// Merges the shards of a `sweep` or `compare` into `out`: a what-if study
/// directory holding every replication, and the outputs of the whole study.
fn merge_whatif_shards(dirs: &[PathBuf], out: &Path, json: bool) -> Result<(), CliError> {
    let merged = merge_whatif(dirs)?;
    let meta = &merged.meta;
    if out.join(WHATIF_FILE).exists() || out.join(META_FILE).exists() {
        return Err(CliError::Usage(format!(
            "--out {} already holds a study; merge into a new directory",
            out.display()
        )));
    }
    let marker_path = dirs[0].join(STUDY_MARKER);
    let marker = std::fs::read_to_string(&marker_path).map_err(|source| CliError::Output {
        path: marker_path,
        source,
    })?;
    let base = scenario::parse_str(
        &merged.base_toml,
        &dirs[0].join(SCENARIO_FILE).display().to_string(),
    )?;

    create_output_dir(out, &marker, false)?;
    meta.write(out)?;
    write_output(out, SCENARIO_FILE, merged.base_toml.as_bytes())?;
    for (i, point) in merged.points.iter().enumerate() {
        store_merged(&meta.point_dir(out, i), point)?;
    }
    let seconds: f64 = merged.points.iter().map(|p| p.meta.work.seconds).sum();
    if !json {
        println!(
            "merged {} shards of the {} of {}: {} {} x {} replications",
            dirs.len(),
            meta.study.command(),
            base.name,
            meta.points,
            match meta.study {
                WhatIf::Sweep { .. } => "grid points",
                WhatIf::Compare { .. } => "arms",
                WhatIf::Sensitivity { .. } => "design points",
            },
            meta.replications
        );
    }
    let plot_args = stored_plot_args(meta);
    match &meta.study {
        WhatIf::Sweep { vary, metrics } => {
            let axes = parse_axes(vary)?;
            let metrics = metric_names(metrics)?;
            let summaries = sweep::grid_indices(&axes)
                .iter()
                .zip(&merged.points)
                .map(|(indices, point)| {
                    sweep::summarize_point(sweep::point_values(&axes, indices), &point.outcomes)
                })
                .collect();
            let results = SweepResults {
                base: &base,
                axes: &axes,
                metrics: &metrics,
                summaries,
                seconds,
            };
            write_sweep_outputs(out, &results, &plot_args, json)
        }
        WhatIf::Compare { metric, arms } => {
            let outcomes: Vec<_> = merged.points.iter().map(|p| p.outcomes.clone()).collect();
            let arm_tomls: Vec<String> = merged
                .points
                .iter()
                .map(|p| p.resolved_toml.clone())
                .collect();
            let results = CompareResults {
                base: &base,
                names: arms,
                outcomes: &outcomes,
                arm_tomls: &arm_tomls,
                metric,
                seconds,
            };
            write_compare_outputs(out, &results, &plot_args, json)
        }
        WhatIf::Sensitivity {
            method,
            params,
            samples,
            metrics,
        } => {
            let outcomes: Vec<_> = merged.points.iter().map(|p| p.outcomes.clone()).collect();
            super::sensitivity::write_merged(
                out,
                &base,
                (method, params, *samples, metrics),
                &outcomes,
                seconds,
                &plot_args,
                json,
            )
        }
    }
}

/// Writes a merged grid point or arm as a complete study directory.
fn store_merged(dir: &Path, merged: &Merged) -> Result<(), CliError> {
    let mut store = StudyStore::create(dir, merged.meta.clone(), &merged.resolved_toml)?;
    for outcome in &merged.outcomes {
        store.save(outcome)?;
    }
    store.replace_meta(merged.meta.clone())?;
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
