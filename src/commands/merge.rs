//! `brandsim merge DIR... --out DIR`: the shards of a study (of `run`, `sweep` or
//! `compare`) merged into the outputs of the whole study, exactly as one process
//! would have written them.

use std::path::{Path, PathBuf};

use super::compare::{CompareResults, write_compare_outputs};
use super::study_dir::{print_study, stored_throughput, write_study_outputs};
use super::sweep::{SweepResults, metric_names, parse_axes, write_sweep_outputs};
use super::whatif_dir::stored_plot_args;
use super::{CliError, Reuse, create_output_dir, write_output};
use crate::scenario;
use crate::shard::{Merged, merge, merge_whatif};
use crate::store::{SCENARIO_FILE, StudyStore, WhatIf, WhatIfMeta};
use crate::study::output_dir::{self, Acquire, DirLock, Marker, MarkerState};
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
    // Shards being written by another process are refused; held while merging.
    let _shard_locks = dirs
        .iter()
        .map(|dir| output_dir::lock_shared(dir))
        .collect::<Result<Vec<_>, _>>()?;
    if WhatIfMeta::read(&dirs[0])?.is_some() {
        return merge_whatif_shards(dirs, out, json);
    }
    let merged = merge(dirs)?;
    let stored_scenario = dirs[0].join(SCENARIO_FILE);
    let scenario = scenario::parse_str(
        &merged.resolved_toml,
        &stored_scenario.display().to_string(),
    )?;
    let fallback = format!("brandsim run\n{}", merged.resolved_toml);
    let _lock = prepare_out(out, &dirs[0], &fallback)?;

    let mut store = StudyStore::create(out, merged.meta.clone(), &merged.resolved_toml)?;
    for outcome in &merged.outcomes {
        store.save(outcome)?;
    }
    store.replace_meta(merged.meta.clone())?;
    let mut throughput = stored_throughput(&scenario, merged.outcomes.len(), &merged.meta.work);
    let (summary, json_text) = write_study_outputs(
        out,
        &scenario,
        &merged.outcomes,
        &mut throughput,
        None,
        None,
    )?;
    super::report::write_for_study(out)?;
    if !json {
        outln!(
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
    )?;
    Ok(())
}

/// Merges the shards of a `sweep` or `compare` into `out`: a what-if study
/// directory holding every replication, and the outputs of the whole study.
fn merge_whatif_shards(dirs: &[PathBuf], out: &Path, json: bool) -> Result<(), CliError> {
    let merged = merge_whatif(dirs)?;
    let meta = &merged.meta;
    let base = scenario::parse_str(
        &merged.base_toml,
        &dirs[0].join(SCENARIO_FILE).display().to_string(),
    )?;
    let fallback = format!("brandsim {}\n{}", meta.study.command(), merged.base_toml);
    let _lock = prepare_out(out, &dirs[0], &fallback)?;
    meta.write(out)?;
    write_output(out, SCENARIO_FILE, merged.base_toml.as_bytes())?;
    for (i, point) in merged.points.iter().enumerate() {
        store_merged(&meta.point_dir(out, i), point)?;
    }
    let point_scenarios = merged
        .points
        .iter()
        .enumerate()
        .map(|(i, point)| {
            let file = meta.point_dir(&dirs[0], i).join(SCENARIO_FILE);
            scenario::parse_str(&point.resolved_toml, &file.display().to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let scenarios: Vec<&scenario::Scenario> = point_scenarios.iter().collect();
    super::whatif_dir::write_point_network_outputs(out, meta, &scenarios, 0)?;
    let seconds: f64 = merged.points.iter().map(|p| p.meta.work.seconds).sum();
    if !json {
        outln!(
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

/// Locks `out` and marks it as holding the study of the shard `first` (its
/// marker's identity, or `fallback`), with the rules of `run`'s `--out`: it must
/// be absent or empty; one that holds any study, this one included, or files
/// brandsim did not write is refused (merge takes no `--resume` nor `--force`).
fn prepare_out(out: &Path, first: &Path, fallback: &str) -> Result<DirLock, CliError> {
    let identity = match Marker::read(first) {
        MarkerState::Current(marker) => marker.identity,
        _ => fallback.to_string(),
    };
    let lock = DirLock::acquire(out, Acquire::CreateIfMissing, "--out")?;
    create_output_dir(out, &identity, false, Reuse::Never)?;
    Ok(lock)
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
